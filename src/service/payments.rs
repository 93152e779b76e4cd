//! Payments: recorded by payments.process (already processed), then reconciled
//! (payments.reconcile) or refunded (payments.refund). Card last 4, IBAN and payer
//! email are sensitive fields.

use crate::audit::Tx;
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
use serde_json::json;
use uuid::Uuid;

pub const METHODS: &[&str] = &["card", "transfer", "cash"];

pub struct NewPayment {
    pub order_id: Option<Uuid>,
    /// The user the payment is assigned to (see `records::placement_for`).
    pub owner_id: Option<Uuid>,
    pub amount: String,
    pub method: String,
    pub reference: Option<String>,
    pub card_last4: Option<String>,
    pub iban: Option<String>,
    pub payer_email: Option<String>,
}

crate::record_module! {
    payment::Entity, Payments, "payment", write: PaymentsProcess, delete: PaymentsProcess, export: Some(PaymentsExport),
    |m| plain {
        "amount" => json!(format_money(m.amount_cents)),
        "method" => json!(m.method),
        "status" => json!(m.status),
        "orderId" => json!(m.order_id.map(|o| o.to_string())),
        "reference" => json!(m.reference),
    } secret {
        PaymentCardLast4 => m.card_last4.clone(),
        PaymentIban => m.iban.clone(),
        PaymentPayerEmail => m.payer_email.clone(),
    }
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
        repo::crm::get::<entity::order::Entity>(tx.db(), &orders, o)
            .await?
            .ok_or_else(|| AppError::bad_input("orderId", "no such order"))?;
    }
    let now = state.clock.now();
    let at = records::placement_for(tx, &reach, input.owner_id).await?;
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
    records::insert_as::<payment::Entity>(tx, &reach, "payment.processed", m, &[], AppError::from).await
}

/// Reconciling and refunding: each happens once (see `records::Transition`).
pub const RECONCILE: records::Transition =
    records::Transition { permission: Permission::PaymentsReconcile, action: "payment.reconciled", steps: &[("processed", "reconciled")] };
pub const REFUND: records::Transition = records::Transition {
    permission: Permission::PaymentsRefund,
    action: "payment.refunded",
    steps: &[("processed", "refunded"), ("reconciled", "refunded")],
};

pub async fn step(
    state: &AppState,
    tx: &Tx<'_>,
    p: &UserPrincipal,
    id: Uuid,
    expected: Option<i64>,
    t: &records::Transition,
) -> AppResult<payment::Model> {
    records::transition::<payment::Entity>(state, tx, p, id, expected, t, |m| &mut m.status, "a payment").await
}
