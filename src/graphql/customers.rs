//! Customers over GraphQL. Rows become `Customer` only through `Customer::project`,
//! which applies the principal's field access to every sensitive field.

use super::audit::AuditEntry;
use super::context::{state, user};
use super::convert::{ExportPayload, parse_id, patch, reveal};
use super::paging::{ListInfo, OrderDirection, Window, wants_total};
use crate::audit::Tx;
use crate::authz::catalog::{Permission, SensitiveField as F};
use crate::authz::eval::Grants;
use crate::authz::fields::{Protected, protect, require_read};
use crate::authz::scope::Reach;
use crate::domain::format_money;
use crate::error::{AppError, AppResult};
use crate::repo;
use crate::repo::crm;
use crate::repo::seek::{Order, SortKey};
use crate::service::customers::{self as svc, CustomerPatch};
use crate::service::export::ExportFormat;
use async_graphql::connection::{Connection, EmptyFields};
use async_graphql::{Context, Enum, ID, InputObject, MaybeUndefined, Object, Upload};
use chrono::{DateTime, Utc};

#[derive(Enum, Copy, Clone, PartialEq, Eq)]
pub enum CustomerStatus {
    Lead,
    Active,
    Inactive,
}

impl CustomerStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Lead => "lead",
            Self::Active => "active",
            Self::Inactive => "inactive",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "active" => Self::Active,
            "inactive" => Self::Inactive,
            _ => Self::Lead,
        }
    }
}

pub struct Customer {
    id: uuid::Uuid,
    workspace_id: uuid::Uuid,
    name: String,
    status: CustomerStatus,
    owner_id: uuid::Uuid,
    department_id: Option<uuid::Uuid>,
    team_id: Option<uuid::Uuid>,
    group_id: Option<uuid::Uuid>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: i64,
    email: Protected,
    phone: Protected,
    tax_id: Protected,
    notes: Protected,
    credit_limit: Protected,
}

impl Customer {
    /// The only way from a row to the API: every sensitive field through `protect`.
    pub fn project(m: entity::customer::Model, g: &Grants) -> Self {
        Self {
            email: protect(g, F::CustomerEmail, m.email),
            phone: protect(g, F::CustomerPhone, m.phone),
            tax_id: protect(g, F::CustomerTaxId, m.tax_id),
            notes: protect(g, F::CustomerNotes, m.notes),
            credit_limit: protect(g, F::CustomerCreditLimit, m.credit_limit_cents.map(format_money)),
            id: m.id,
            workspace_id: m.workspace_id,
            name: m.name,
            status: CustomerStatus::parse(&m.status),
            owner_id: m.owner_id,
            department_id: m.department_id,
            team_id: m.team_id,
            group_id: m.group_id,
            created_at: m.created_at,
            updated_at: m.updated_at,
            version: m.version,
        }
    }
}

fn id(u: uuid::Uuid) -> ID {
    ID(u.to_string())
}

#[Object]
impl Customer {
    async fn id(&self) -> ID {
        id(self.id)
    }
    async fn name(&self) -> &str {
        &self.name
    }
    async fn status(&self) -> CustomerStatus {
        self.status
    }
    /// The assigned user.
    async fn owner_id(&self) -> ID {
        id(self.owner_id)
    }
    async fn department_id(&self) -> Option<ID> {
        self.department_id.map(id)
    }
    async fn team_id(&self) -> Option<ID> {
        self.team_id.map(id)
    }
    async fn group_id(&self) -> Option<ID> {
        self.group_id.map(id)
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }
    /// Bumped by every change. Pass it back as `expectedVersion` so that a change made
    /// meanwhile by someone else is not overwritten: a stale one answers CONFLICT with
    /// `extensions.currentVersion`, and nothing is written.
    async fn version(&self) -> i64 {
        self.version
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.updated_at
    }
    /// Sensitive (masked: domain only).
    async fn email(&self, ctx: &Context<'_>) -> Option<String> {
        reveal(ctx, &self.email)
    }
    /// Sensitive (masked: last 4 digits).
    async fn phone(&self, ctx: &Context<'_>) -> Option<String> {
        reveal(ctx, &self.phone)
    }
    /// Sensitive (masked: last 4 characters).
    async fn tax_id(&self, ctx: &Context<'_>) -> Option<String> {
        reveal(ctx, &self.tax_id)
    }
    /// Sensitive (masked: hidden).
    async fn notes(&self, ctx: &Context<'_>) -> Option<String> {
        reveal(ctx, &self.notes)
    }
    /// Sensitive, as a decimal string (masked: order of magnitude).
    async fn credit_limit(&self, ctx: &Context<'_>) -> Option<String> {
        reveal(ctx, &self.credit_limit)
    }
    /// This record's audit entries, newest first. Sensitive values never appear in
    /// them, only that they changed.
    async fn history(&self, ctx: &Context<'_>) -> AppResult<Vec<AuditEntry>> {
        super::history::of(ctx, self.workspace_id, self.id).await
    }
}

#[derive(InputObject, Default)]
pub struct CustomerFilter {
    /// Part of the name, any case.
    pub search: Option<String>,
    pub status: Option<CustomerStatus>,
    pub owner_id: Option<ID>,
    /// Exact email; needs READ access to customer emails.
    pub email: Option<String>,
}

#[derive(Enum, Copy, Clone, PartialEq, Eq, Default)]
pub enum CustomerOrderField {
    #[default]
    CreatedAt,
    Name,
    /// Needs READ access to credit limits.
    CreditLimit,
}

#[derive(InputObject, Default)]
pub struct CustomerOrder {
    #[graphql(default)]
    pub field: CustomerOrderField,
    #[graphql(default)]
    pub direction: OrderDirection,
}

#[derive(InputObject)]
pub struct CustomerInput {
    pub name: Option<String>,
    pub status: Option<CustomerStatus>,
    /// Sensitive fields need WRITE access; null clears, absence keeps.
    pub email: MaybeUndefined<String>,
    pub phone: MaybeUndefined<String>,
    pub tax_id: MaybeUndefined<String>,
    pub notes: MaybeUndefined<String>,
    /// A decimal amount such as "2500.00".
    pub credit_limit: MaybeUndefined<String>,
    /// Only when creating: the user the new customer is assigned to (and placed with:
    /// their department, team and primary group). Your customers scope must cover
    /// them; by default the customer is yours. Later, `reassignCustomer`.
    pub owner_id: Option<ID>,
}

impl CustomerInput {
    /// The input of a change: an owner is given only when creating.
    fn change(self) -> AppResult<CustomerPatch> {
        if self.owner_id.is_some() {
            return Err(AppError::bad_input("ownerId", "is given only when creating; use reassignCustomer"));
        }
        Ok(self.into())
    }
}

impl From<CustomerInput> for CustomerPatch {
    fn from(i: CustomerInput) -> Self {
        Self {
            name: i.name,
            status: i.status.map(|s| s.as_str().to_owned()),
            email: patch(i.email),
            phone: patch(i.phone),
            tax_id: patch(i.tax_id),
            notes: patch(i.notes),
            credit_limit: patch(i.credit_limit),
        }
    }
}

#[derive(Default)]
pub struct CustomersQuery;

#[Object]
impl CustomersQuery {
    /// Customers in your scope.
    async fn customers(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<CustomerFilter>,
        order_by: Option<CustomerOrder>,
    ) -> AppResult<Connection<String, Customer, ListInfo, EmptyFields>> {
        let p = user(ctx)?;
        let reach = Reach::for_permission(p, Permission::CustomersRead)?;
        let f = filter.unwrap_or_default();
        if f.email.is_some() {
            require_read(&p.grants, F::CustomerEmail)?;
        }
        let order = order_by.unwrap_or_default();
        let key = match order.field {
            CustomerOrderField::CreatedAt => SortKey::Id,
            CustomerOrderField::Name => SortKey::Column("name"),
            CustomerOrderField::CreditLimit => {
                require_read(&p.grants, F::CustomerCreditLimit)?;
                SortKey::Amount("credit_limit_cents")
            }
        };
        let w = Window::new(&p.grants, "customers", Order { key, desc: order.direction == OrderDirection::Desc }, first, after.as_deref())?;
        let filter = repo::customers::Filter {
            search: f.search,
            status: f.status.map(|s| s.as_str().to_owned()),
            owner_id: f.owner_id.as_ref().map(|o| parse_id("filter.ownerId", o)).transpose()?,
            email: f.email,
        };
        let db = &state(ctx)?.db;
        let total = if wants_total(ctx) { Some(repo::crm::tally(db, &reach, &filter).await?) } else { None };
        let rows = repo::crm::find(db, &reach, &filter, w.order(), w.after(), w.fetch()).await?;
        w.page(rows, total, crm::seek_of::<entity::customer::Entity>, |m| Customer::project(m, &p.grants))
    }

    /// One customer; NOT_FOUND when missing or out of your scope.
    async fn customer(&self, ctx: &Context<'_>, id: ID) -> AppResult<Customer> {
        let p = user(ctx)?;
        let reach = Reach::for_permission(p, Permission::CustomersRead)?;
        let m =
            repo::crm::get::<entity::customer::Entity>(&state(ctx)?.db, &reach, parse_id("id", &id)?).await?.ok_or(AppError::NotFound)?;
        Ok(Customer::project(m, &p.grants))
    }
}

/// What an import did; with problems (or as a dry run) it created nothing.
#[derive(async_graphql::SimpleObject)]
pub struct ImportReport {
    pub dry_run: bool,
    pub rows: i32,
    pub created: i32,
    /// Every problem found.
    pub problem_count: i32,
    /// The first 1,000 problems, in file order.
    pub problems: Vec<ImportProblem>,
}

/// One bad value: the CSV line (the header is line 1) or the JSON element (from 1), and
/// the field.
#[derive(async_graphql::SimpleObject)]
pub struct ImportProblem {
    pub line: u64,
    pub field: String,
    pub message: String,
}

#[derive(Default)]
pub struct CustomersMutation;

#[Object]
impl CustomersMutation {
    /// Creates customers from a CSV file (a header row naming the columns, then one
    /// customer per line) or a JSON array of objects; columns: name (required), status,
    /// email, phone, taxId, notes, creditLimit. The file is `content` (text in the
    /// request) or `file` (an upload: a multipart request, for files of any size up to
    /// the server's upload limit). All or nothing: one bad value anywhere and nothing is
    /// created; the report gives the problems with their line and field. `dryRun` only
    /// checks. Needs customers.import and customers.write, WRITE on any sensitive column
    /// given, the bulkOperations restriction and at most maxRecordsPerRequest rows;
    /// audited (each customer, and the import).
    async fn import_customers(
        &self,
        ctx: &Context<'_>,
        format: ExportFormat,
        content: Option<String>,
        file: Option<Upload>,
        #[graphql(default)] dry_run: bool,
    ) -> AppResult<ImportReport> {
        let (p, tx) = (user(ctx)?, Tx::current(ctx)?);
        let (file, given_as): (Box<dyn std::io::Read + Send>, _) = match (content, file) {
            (Some(text), None) => (Box::new(std::io::Cursor::new(text.into_bytes())), "content"),
            (None, Some(upload)) => {
                let upload = upload.value(ctx).map_err(|_| AppError::bad_input("file", "the upload is missing from the request"))?;
                (Box::new(upload.content), "file")
            }
            _ => return Err(AppError::bad_input("content", "give the file as either content or file")),
        };
        // The service names the file `content`; an upload's problems name the argument
        // the caller used.
        let r = svc::import(state(ctx)?, &tx, p, format, file, dry_run).await.map_err(|e| match e {
            AppError::BadInput { field, message } if field == "content" => AppError::BadInput { field: given_as.into(), message },
            e => e,
        })?;
        Ok(ImportReport {
            dry_run,
            rows: i32::try_from(r.rows).unwrap_or(i32::MAX),
            created: i32::try_from(r.created).unwrap_or(i32::MAX),
            problem_count: i32::try_from(r.problem_count).unwrap_or(i32::MAX),
            problems: r.problems.into_iter().map(|p| ImportProblem { line: p.line, field: p.field, message: p.message }).collect(),
        })
    }

    /// Creates a customer assigned to you, in your department, team and primary group.
    async fn create_customer(&self, ctx: &Context<'_>, input: CustomerInput) -> AppResult<Customer> {
        let (p, tx) = (user(ctx)?, Tx::current(ctx)?);
        let owner = input.owner_id.as_ref().map(|o| parse_id("ownerId", o)).transpose()?;
        let m = svc::create(state(ctx)?, &tx, p, input.into(), owner).await?;
        Ok(Customer::project(m, &p.grants))
    }

    async fn update_customer(&self, ctx: &Context<'_>, id: ID, expected_version: Option<i64>, input: CustomerInput) -> AppResult<Customer> {
        let (p, tx) = (user(ctx)?, Tx::current(ctx)?);
        let m = svc::update(state(ctx)?, &tx, p, parse_id("id", &id)?, expected_version, input.change()?).await?;
        Ok(Customer::project(m, &p.grants))
    }

    /// Gives the customer to another user (the record follows them into their
    /// department, team and group).
    async fn reassign_customer(&self, ctx: &Context<'_>, id: ID, expected_version: Option<i64>, owner_id: ID) -> AppResult<Customer> {
        let (p, tx) = (user(ctx)?, Tx::current(ctx)?);
        let m = svc::reassign(state(ctx)?, &tx, p, parse_id("id", &id)?, expected_version, parse_id("ownerId", &owner_id)?).await?;
        Ok(Customer::project(m, &p.grants))
    }

    /// Applies one change to several customers, all or nothing. Needs the
    /// bulkOperations restriction; at most maxRecordsPerRequest ids.
    async fn bulk_update_customers(&self, ctx: &Context<'_>, ids: Vec<ID>, input: CustomerInput) -> AppResult<Vec<Customer>> {
        let (p, tx) = (user(ctx)?, Tx::current(ctx)?);
        let ids = ids.iter().map(|i| parse_id("ids", i)).collect::<Result<Vec<_>, _>>()?;
        let rows = svc::bulk_update(state(ctx)?, &tx, p, &ids, input.change()?).await?;
        Ok(rows.into_iter().map(|m| Customer::project(m, &p.grants)).collect())
    }

    /// Deletes several customers, all or nothing; returns how many.
    async fn bulk_delete_customers(&self, ctx: &Context<'_>, ids: Vec<ID>) -> AppResult<i32> {
        let (p, tx) = (user(ctx)?, Tx::current(ctx)?);
        let ids = ids.iter().map(|i| parse_id("ids", i)).collect::<Result<Vec<_>, _>>()?;
        let n = svc::bulk_delete(state(ctx)?, &tx, p, &ids).await?;
        Ok(i32::try_from(n).unwrap_or(i32::MAX))
    }

    /// Exports the customers in your scope, sensitive fields as you may see them.
    /// Needs customers.export and the dataExport restriction; audited.
    /// At most 10,000 rows in the answer; `download: true` answers with a file to fetch
    /// instead, which streams (see `ExportDownload`).
    async fn export_customers(
        &self,
        ctx: &Context<'_>,
        format: ExportFormat,
        filter: Option<CustomerFilter>,
        #[graphql(default)] download: bool,
    ) -> AppResult<ExportPayload> {
        let p = user(ctx)?;
        let f = filter.unwrap_or_default();
        if f.email.is_some() {
            require_read(&p.grants, F::CustomerEmail)?;
        }
        let filter = repo::customers::Filter {
            search: f.search,
            status: f.status.map(|s| s.as_str().to_owned()),
            owner_id: f.owner_id.as_ref().map(|o| parse_id("filter.ownerId", o)).transpose()?,
            email: f.email,
        };
        let condition = repo::crm::RecordFilter::condition(&filter);
        super::convert::export::<entity::customer::Entity>(ctx, format, download, condition, Some(filter)).await
    }

    async fn delete_customer(&self, ctx: &Context<'_>, id: ID, expected_version: Option<i64>) -> AppResult<bool> {
        let (p, tx) = (user(ctx)?, Tx::current(ctx)?);
        svc::delete(state(ctx)?, &tx, p, parse_id("id", &id)?, expected_version).await?;
        Ok(true)
    }
}
