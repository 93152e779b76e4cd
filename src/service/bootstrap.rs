//! Command-line bootstrap: the first master admin and the demo workspaces. These run
//! outside any request, as the `system` actor, but through the same audit writer and
//! in one transaction each, like every other change.

use crate::audit::AuditEvent;
use crate::auth::BuiltinRole;
use crate::domain::{Email, NewPassword, Username};
use crate::error::{AppError, AppResult};
use crate::repo;
use crate::secret::Secret;
use crate::state::AppState;
use sea_orm::{DatabaseTransaction, TransactionTrait};
use uuid::Uuid;

async fn write_system(state: &AppState, txn: &DatabaseTransaction, events: Vec<AuditEvent>) -> AppResult<()> {
    crate::audit::writer::write_system(txn, events, state.clock.now()).await?;
    Ok(())
}

pub async fn create_master_admin(state: &AppState, email: &str, password: &str) -> AppResult<Uuid> {
    let email = Email::parse("email", email)?;
    let password = NewPassword::parse("password", password)?;
    let local = email.display.split('@').next().unwrap_or_default();
    crate::auth::password_policy::check_strength("password", password.expose(), &[&email.display, local])?;
    let txn = state.db.begin().await?;
    if repo::master_admins::by_email_key(&txn, &email.key).await?.is_some() {
        return Err(AppError::Conflict("a master admin with this email already exists".into()));
    }
    let hash = state.hasher.hash(&password).await?;
    let admin = repo::master_admins::insert(&txn, &email, hash, state.clock.now()).await?;
    write_system(state, &txn, vec![AuditEvent::MasterAdminCreated { admin_id: admin.id, email: admin.email.clone() }]).await?;
    txn.commit().await?;
    Ok(admin.id)
}

pub enum DemoSeed {
    AlreadyPresent,
    Created { password: Secret<String>, generated: bool },
}

pub fn random_password() -> Secret<String> {
    use rand::RngExt;
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    let s: String = (0..20).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect();
    Secret::new(s)
}

struct DemoUser {
    username: &'static str,
    name: &'static str,
    role: BuiltinRole,
    department: Option<usize>,
    team: Option<usize>,
    group: Option<usize>,
    extra_groups: &'static [usize],
    active: bool,
}

/// Creates the `demo` and `acme` workspaces once. Every demo user shares one password:
/// `PALISADE_DEMO_PASSWORD` if set, else a random one returned to be printed once.
pub async fn seed_demo(state: &AppState) -> AppResult<DemoSeed> {
    if repo::workspaces::by_slug(&state.db, "demo").await?.is_some() {
        return Ok(DemoSeed::AlreadyPresent);
    }
    let (password, generated) = match &state.config.demo_password {
        Some(p) => (p.clone(), false),
        None => (random_password(), true),
    };
    let pw = NewPassword::parse("PALISADE_DEMO_PASSWORD", password.expose())?;
    let now = state.clock.now();
    let txn = state.db.begin().await?;
    let mut events = Vec::new();

    for (slug, name, domain) in [("demo", "Demo Trading Ltd", "demo.palisade.test"), ("acme", "Acme Services", "acme.palisade.test")] {
        let (ws, _, ev) = crate::service::workspaces::create(
            state,
            &txn,
            crate::service::workspaces::NewWorkspaceInput {
                slug,
                name,
                owner_username: "owner",
                owner_email: &format!("owner@{domain}"),
                owner_password: pw.expose(),
                check_strength: false,
            },
        )
        .await?;
        events.push(ev);

        let mut departments = Vec::new();
        for d in ["Sales", "Support"] {
            departments.push(repo::org::insert_department(&txn, ws.id, d, now).await?.id);
        }
        let mut teams = Vec::new();
        for (t, d) in [("Sales North", 0), ("Sales South", 0), ("Helpdesk", 1)] {
            teams.push(repo::org::insert_team(&txn, ws.id, Some(departments[d]), t, now).await?.id);
        }
        let mut groups = Vec::new();
        for g in ["North", "South", "Key accounts"] {
            groups.push(repo::org::insert_group(&txn, ws.id, g, now).await?.id);
        }
        let mut owners = vec![(owner_record(&txn, ws.id).await?, 0usize)];
        if slug != "demo" {
            seed_customers(&txn, ws.id, &owners, domain, now, &mut events).await?;
            continue;
        }
        let users = [
            DemoUser {
                username: "manager",
                name: "Morgan Manager",
                role: BuiltinRole::Manager,
                department: Some(0),
                team: Some(0),
                group: Some(0),
                extra_groups: &[2],
                active: true,
            },
            DemoUser {
                username: "staff",
                name: "Sasha Staff",
                role: BuiltinRole::Staff,
                department: Some(0),
                team: Some(0),
                group: Some(0),
                extra_groups: &[],
                active: true,
            },
            DemoUser {
                username: "sam",
                name: "Sam South",
                role: BuiltinRole::Staff,
                department: Some(0),
                team: Some(1),
                group: Some(1),
                extra_groups: &[],
                active: true,
            },
            DemoUser {
                username: "guest",
                name: "Gale Guest",
                role: BuiltinRole::Guest,
                department: Some(1),
                team: Some(2),
                group: Some(1),
                extra_groups: &[],
                active: true,
            },
            DemoUser {
                username: "former",
                name: "Fran Former",
                role: BuiltinRole::Staff,
                department: Some(1),
                team: Some(2),
                group: None,
                extra_groups: &[],
                active: false,
            },
        ];
        for u in users {
            let username = Username::parse("username", u.username)?;
            let email = Email::parse("email", &format!("{}@{domain}", u.username))?;
            let hash = state.hasher.hash(&pw).await?;
            let created = repo::users::insert(
                &txn,
                ws.id,
                repo::users::NewUser {
                    username: &username,
                    email: &email,
                    display_name: u.name,
                    password_hash: Some(hash),
                    builtin_role: u.role,
                    department_id: u.department.map(|i| departments[i]),
                    team_id: u.team.map(|i| teams[i]),
                    primary_group_id: u.group.map(|i| groups[i]),
                    active: u.active,
                    licensed: true,
                    licence_ends_at: None,
                    now,
                },
            )
            .await?;
            if let Some(role) = repo::roles::by_builtin(&txn, ws.id, u.role.as_str()).await? {
                crate::service::roles::assign_plain(&txn, ws.id, role.def.id, created.id, None, now).await?;
            }
            for g in u.extra_groups {
                repo::org::add_member(&txn, ws.id, groups[*g], created.id).await?;
            }
            events.push(AuditEvent::UserCreated {
                workspace_id: ws.id,
                user_id: created.id,
                username: created.username.clone(),
                role: u.role.as_str(),
                active: u.active,
            });
            if u.active {
                let n = owners.len();
                owners.push((created, n));
            }
        }
        seed_customers(&txn, ws.id, &owners, domain, now, &mut events).await?;
    }
    write_system(state, &txn, events).await?;
    txn.commit().await?;
    Ok(DemoSeed::Created { password, generated })
}

/// Workspaces created before roles existed have none: give them the built-in roles and
/// assign each user the built-in role recorded on them. Runs at start-up; a workspace
/// that has any role is left alone.
pub async fn backfill_builtin_roles(state: &AppState) -> AppResult<usize> {
    use sea_orm::EntityTrait;
    let mut done = 0;
    for ws in entity::workspace::Entity::find().all(&state.db).await? {
        if !repo::roles::all(&state.db, ws.id).await?.is_empty() {
            continue;
        }
        let txn = state.db.begin().await?;
        let now = state.clock.now();
        let ids = crate::service::roles::create_builtin_roles(&txn, ws.id, now).await?;
        use sea_orm::{ColumnTrait, QueryFilter};
        let users = entity::user::Entity::find().filter(entity::user::Column::WorkspaceId.eq(ws.id)).all(&txn).await?;
        for u in users {
            if let Some(role) = ids.get(&BuiltinRole::parse(&u.builtin_role)) {
                crate::service::roles::assign_plain(&txn, ws.id, *role, u.id, None, now).await?;
            }
        }
        repo::roles::bump_epoch(&txn, ws.id).await?;
        txn.commit().await?;
        done += 1;
    }
    Ok(done)
}

async fn owner_record(db: &impl sea_orm::ConnectionTrait, workspace_id: Uuid) -> AppResult<entity::user::Model> {
    repo::users::find_for_login(db, workspace_id, "owner").await?.ok_or_else(|| AppError::internal("seeded owner missing"))
}

/// Two customers per active demo user, placed like records that user created.
async fn seed_customers(
    db: &impl sea_orm::ConnectionTrait,
    workspace_id: Uuid,
    owners: &[(entity::user::Model, usize)],
    domain: &str,
    now: chrono::DateTime<chrono::Utc>,
    events: &mut Vec<AuditEvent>,
) -> AppResult<()> {
    use crate::authz::catalog::Module;
    use crate::authz::scope::{Placement, Reach};
    const NAMES: &[&str] = &[
        "Northwind Traders",
        "Contoso Pharma",
        "Fabrikam Tools",
        "Tailspin Toys",
        "Wide World Importers",
        "Adventure Works",
        "Litware Labs",
        "Proseware Inc",
        "Coho Vineyard",
        "Lucerne Publishing",
        "Margie's Travel",
        "Alpine Ski House",
    ];
    for (user, i) in owners {
        let placement = Placement {
            user_id: user.id,
            department_id: user.department_id,
            team_id: user.team_id,
            primary_group_id: user.primary_group_id,
            group_ids: Vec::new(),
            new_record_owner: user.id,
        };
        let reach = Reach::bootstrap(workspace_id, Module::Customers, placement);
        for k in 0..2 {
            let n = (i * 2 + k) % NAMES.len();
            let name = NAMES[n];
            let slug: String = name.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_lowercase();
            let m = crate::new_record!(entity::customer::Model {
                workspace_id: workspace_id,
                placed: reach.placement(),
                now: now,
                name: format!("{name} ({domain})"),
                status: ["lead", "active", "inactive"][n % 3].into(),
                email: Some(format!("accounts@{slug}.example")),
                phone: Some(format!("+44 20 7946 {:04}", 100 + n * 37)),
                tax_id: Some(format!("GB{:09}", 123_456_000 + n * 7919)),
                notes: Some(format!("Key contact prefers email. Renewal in month {}.", n % 12 + 1)),
                credit_limit_cents: Some(((n as i64) + 1) * 250_000),
            });
            let created = repo::crm::insert::<entity::customer::Entity>(db, &reach, m).await?;
            if k == 0 {
                let product = crate::new_record!(entity::product::Model {
                    workspace_id: workspace_id,
                    placed: reach.placement(),
                    now: now,
                    name: ["Standard widget", "Deluxe widget", "Service plan", "Spare parts kit", "Installation", "Training day"][*i % 6]
                        .into(),
                    sku: format!("SKU-{:03}", 100 + i),
                    price_cents: 4_900 + (*i as i64) * 2_500,
                    cost_price_cents: Some(2_100 + (*i as i64) * 1_100),
                    supplier: Some(["Globex Supply", "Initech Parts", "Umbrella Wholesale"][*i % 3].into()),
                    stock: 25 + (*i as i32) * 5,
                    active: true,
                });
                let reach = Reach::bootstrap(workspace_id, Module::Products, reach.placement().clone());
                let p = repo::crm::insert::<entity::product::Entity>(db, &reach, product).await?;
                let order = crate::new_record!(entity::order::Model {
                    workspace_id: workspace_id,
                    placed: reach.placement(),
                    now: now,
                    customer_id: created.id,
                    status: "draft".into(),
                    total_cents: p.price_cents * 2,
                    internal_notes: Some("Deliver to the side entrance.".into()),
                });
                let ticket_reach = Reach::bootstrap(workspace_id, Module::Tickets, reach.placement().clone());
                let t = repo::crm::insert::<entity::ticket::Entity>(
                    db,
                    &ticket_reach,
                    crate::new_record!(entity::ticket::Model {
                        workspace_id: workspace_id,
                        placed: reach.placement(),
                        now: now,
                        customer_id: Some(created.id),
                        subject: format!("Delivery question from {}", created.name),
                        status: "open".into(),
                        priority: ["low", "normal", "high", "urgent"][*i % 4].into(),
                        description: Some("Customer asks when the next delivery arrives.".into()),
                        internal_notes: Some("Customer was unhappy last time; escalate if late.".into()),
                    }),
                )
                .await?;
                events.push(AuditEvent::Record {
                    workspace_id,
                    action: "ticket.created",
                    module: "tickets",
                    target_type: "ticket",
                    id: t.id,
                    changes: serde_json::json!({ "subject": { "before": null, "after": t.subject } }),
                });
                let order_reach = Reach::bootstrap(workspace_id, Module::Orders, reach.placement().clone());
                let o = repo::crm::insert::<entity::order::Entity>(db, &order_reach, order).await?;
                repo::orders::replace_lines(db, workspace_id, o.id, &[(p.id, 2, p.price_cents)]).await?;
                let pay_reach = Reach::bootstrap(workspace_id, Module::Payments, reach.placement().clone());
                let slug: String = created.name.chars().filter(|c| c.is_ascii_alphanumeric()).take(12).collect::<String>().to_lowercase();
                let pay = repo::crm::insert::<entity::payment::Entity>(
                    db,
                    &pay_reach,
                    crate::new_record!(entity::payment::Model {
                        workspace_id: workspace_id,
                        placed: reach.placement(),
                        now: now,
                        order_id: Some(o.id),
                        amount_cents: o.total_cents,
                        method: "card".into(),
                        status: "processed".into(),
                        reference: Some(format!("PAY-{:04}", 1000 + i)),
                        card_last4: Some(format!("{:04}", 4242 + i)),
                        iban: Some(format!("GB82WEST1234569876{:04}", 5432 + i)),
                        payer_email: Some(format!("ap@{slug}.example")),
                    }),
                )
                .await?;
                let base = |m: Module| Reach::bootstrap(workspace_id, m, reach.placement().clone());
                let q = repo::crm::insert::<entity::quote::Entity>(
                    db,
                    &base(Module::Quotes),
                    crate::new_record!(entity::quote::Model {
                        workspace_id: workspace_id,
                        placed: reach.placement(),
                        now: now,
                        customer_id: created.id,
                        title: "Annual service renewal".into(),
                        amount_cents: 120_000 + (*i as i64) * 10_000,
                        status: "sent".into(),
                    }),
                )
                .await?;
                let j = repo::crm::insert::<entity::job::Entity>(
                    db,
                    &base(Module::Jobs),
                    crate::new_record!(entity::job::Model {
                        workspace_id: workspace_id,
                        placed: reach.placement(),
                        now: now,
                        customer_id: Some(created.id),
                        title: "On-site installation".into(),
                        status: "scheduled".into(),
                        scheduled_for: Some(now + chrono::Duration::days(7 + *i as i64)),
                        notes: Some("Bring the ladder.".into()),
                    }),
                )
                .await?;
                let inv = repo::crm::insert::<entity::invoice::Entity>(
                    db,
                    &base(Module::Invoices),
                    crate::new_record!(entity::invoice::Model {
                        workspace_id: workspace_id,
                        placed: reach.placement(),
                        now: now,
                        customer_id: created.id,
                        number: format!("INV-2026-{:04}", 1 + i),
                        amount_cents: o.total_cents,
                        status: "sent".into(),
                        due_at: Some(now + chrono::Duration::days(30)),
                        bank_details: Some(format!("Demo Bank, IBAN GB33BUKB2020155555{:04}", 5555 + i)),
                    }),
                )
                .await?;
                for (action, module, target_type, id) in [
                    ("quote.created", "quotes", "quote", q.id),
                    ("job.created", "jobs", "job", j.id),
                    ("invoice.created", "invoices", "invoice", inv.id),
                ] {
                    events.push(AuditEvent::Record {
                        workspace_id,
                        action,
                        module,
                        target_type,
                        id,
                        changes: serde_json::json!({ "created": { "before": null, "after": true } }),
                    });
                }
                events.push(AuditEvent::Record {
                    workspace_id,
                    action: "payment.processed",
                    module: "payments",
                    target_type: "payment",
                    id: pay.id,
                    changes: serde_json::json!({ "amount": { "before": null, "after": crate::domain::format_money(pay.amount_cents) } }),
                });
                events.push(AuditEvent::Record {
                    workspace_id,
                    action: "order.created",
                    module: "orders",
                    target_type: "order",
                    id: o.id,
                    changes: serde_json::json!({ "status": { "before": null, "after": "draft" }, "customerId": { "before": null, "after": created.id.to_string() } }),
                });
                events.push(AuditEvent::Record {
                    workspace_id,
                    action: "product.created",
                    module: "products",
                    target_type: "product",
                    id: p.id,
                    changes: serde_json::json!({ "name": { "before": null, "after": p.name }, "sku": { "before": null, "after": p.sku } }),
                });
            }
            events.push(AuditEvent::Record {
                workspace_id,
                action: "customer.created",
                module: "customers",
                target_type: "customer",
                id: created.id,
                changes: serde_json::json!({ "name": { "before": null, "after": created.name }, "ownerId": { "before": null, "after": created.owner_id.to_string() } }),
            });
        }
    }
    Ok(())
}
