//! Payments: recorded by payments.process (already processed), then reconciled
//! (payments.reconcile) or refunded (payments.refund). Card last 4, IBAN and payer
//! email are sensitive fields.

use crate::audit::Tx;
use crate::audit::{AuditEvent, record_changes};
use crate::auth::UserPrincipal;
use crate::authz::catalog::{Permission, SensitiveField};
use crate::authz::fields::require_write;
use crate::authz::scope::Reach;
use crate::domain::Email;
use crate::domain::{format_money, parse_money};
use crate::error::{AppError, AppResult};
use crate::repo;
use crate::service::records;
use crate::state::AppState;
use entity::payment;
use serde_json::{Value, json};
use uuid::Uuid;

pub const METHODS: &[&str] = &["card", "transfer", "cash"];

pub struct NewPayment {
    pub order_id: Option<Uuid>,
    pub amount: String,
    pub method: String,
    pub reference: Option<String>,
    pub card_last4: Option<String>,
    pub iban: Option<String>,
    pub payer_email: Option<String>,
}

fn changes(before: Option<&payment::Model>, after: &payment::Model) -> Value {
    let plain = |m: Option<&payment::Model>| -> [Value; 4] {
        match m {
            None => Default::default(),
            Some(m) => [json!(format_money(m.amount_cents)), json!(m.method), json!(m.status), json!(m.order_id.map(|o| o.to_string()))],
        }
    };
    let (pb, pa) = (plain(before), plain(Some(after)));
    let plain: Vec<_> =
        ["amount", "method", "status", "orderId"].iter().enumerate().map(|(i, n)| (*n, pb[i].clone(), pa[i].clone())).collect();
    let secret = [
        ("cardLast4", before.and_then(|b| b.card_last4.clone()), after.card_last4.clone()),
        ("iban", before.and_then(|b| b.iban.clone()), after.iban.clone()),
        ("payerEmail", before.and_then(|b| b.payer_email.clone()), after.payer_email.clone()),
    ];
    record_changes(&plain, &secret)
}

fn event(ws: Uuid, action: &'static str, id: Uuid, changes: Value) -> AuditEvent {
    AuditEvent::Record { workspace_id: ws, action, module: "payments", target_type: "payment", id, changes }
}

pub async fn record(state: &AppState, tx: &Tx<'_>, p: &UserPrincipal, input: NewPayment) -> AppResult<payment::Model> {
    let reach = Reach::for_permission(p, Permission::PaymentsProcess)?;
    let mut fields = Vec::new();
    for (present, f) in [
        (input.card_last4.is_some(), SensitiveField::PaymentCardLast4),
        (input.iban.is_some(), SensitiveField::PaymentIban),
        (input.payer_email.is_some(), SensitiveField::PaymentPayerEmail),
    ] {
        if present {
            fields.push(f);
        }
    }
    require_write(&p.grants, &fields)?;
    let amount = parse_money("amount", &input.amount)?;
    if amount == 0 {
        return Err(AppError::bad_input("amount", "must be more than zero"));
    }
    if !METHODS.contains(&input.method.as_str()) {
        return Err(AppError::bad_input("method", "must be card, transfer or cash"));
    }
    if let Some(c) = &input.card_last4
        && (c.len() != 4 || !c.chars().all(|d| d.is_ascii_digit()))
    {
        return Err(AppError::bad_input("cardLast4", "must be 4 digits"));
    }
    let iban = match &input.iban {
        None => None,
        Some(i) => {
            let i: String = i.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_uppercase();
            if !(15..=34).contains(&i.len()) || !i.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(AppError::bad_input("iban", "must be an IBAN (15 to 34 letters and digits)"));
            }
            Some(i)
        }
    };
    let payer_email = input.payer_email.as_deref().map(|e| Email::parse("payerEmail", e).map(|e| e.display)).transpose()?;
    let reference = input.reference.as_deref().map(|r| crate::domain::parse_name("reference", r, 100)).transpose()?;
    if let Some(o) = input.order_id {
        let orders = Reach::for_permission(p, Permission::OrdersRead).map_err(|_| AppError::bad_input("orderId", "no such order"))?;
        repo::orders::get(tx.db(), &orders, o).await?.ok_or_else(|| AppError::bad_input("orderId", "no such order"))?;
    }
    let now = state.clock.now();
    let at = reach.placement();
    let m = crate::new_record!(payment::Model {
        workspace_id: reach.workspace_id(),
        placed: at,
        now: now,
        order_id: input.order_id,
        amount_cents: amount,
        method: input.method,
        status: "processed".into(),
        reference,
        card_last4: input.card_last4,
        iban,
        payer_email,
    });
    let created = repo::crm::insert::<entity::payment::Entity>(tx.db(), &reach, m).await?;
    tx.audit(event(reach.workspace_id(), "payment.processed", created.id, changes(None, &created)));
    Ok(created)
}

#[derive(Clone, Copy)]
pub enum Step {
    Reconcile,
    Refund,
}

pub async fn step(state: &AppState, tx: &Tx<'_>, p: &UserPrincipal, id: Uuid, expected: Option<i64>, s: Step) -> AppResult<payment::Model> {
    let (permission, action) = match s {
        Step::Reconcile => (Permission::PaymentsReconcile, "payment.reconciled"),
        Step::Refund => (Permission::PaymentsRefund, "payment.refunded"),
    };
    let reach = Reach::for_permission(p, permission)?;
    let before = records::lock::<entity::payment::Entity>(tx, &reach, id, expected).await?;
    let next = match (s, before.status.as_str()) {
        (Step::Reconcile, "processed") => "reconciled",
        (Step::Refund, "processed" | "reconciled") => "refunded",
        (_, status) => return Err(AppError::Conflict(format!("not possible for a payment that is {status}"))),
    };
    let mut after = before.clone();
    after.status = next.into();
    after.updated_at = state.clock.now();
    let after = repo::crm::save::<payment::Entity>(tx.db(), &reach, &before, after).await?;
    tx.audit(event(reach.workspace_id(), action, id, changes(Some(&before), &after)));
    Ok(after)
}
