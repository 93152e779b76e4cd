use entity::master_admin;
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

pub async fn by_email_key(db: &impl ConnectionTrait, email_key: &str) -> Result<Option<master_admin::Model>, DbErr> {
    master_admin::Entity::find().filter(master_admin::Column::EmailKey.eq(email_key)).one(db).await
}

pub async fn get(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<master_admin::Model>, DbErr> {
    master_admin::Entity::find_by_id(id).one(db).await
}

pub async fn insert(
    db: &impl ConnectionTrait,
    email: &crate::domain::Email,
    password_hash: String,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<master_admin::Model, DbErr> {
    master_admin::ActiveModel {
        id: Set(Uuid::now_v7()),
        email: Set(email.display.clone()),
        email_key: Set(email.key.clone()),
        password_hash: Set(password_hash),
        active: Set(true),
        created_at: Set(now),
        totp_secret: Set(None),
        totp_last_step: Set(None),
        totp_enabled_at: Set(None),
        recovery_codes: Set("[]".into()),
    }
    .insert(db)
    .await
}

/// The unused recovery code hashes stored for an admin.
pub fn recovery_hashes(admin: &master_admin::Model) -> Vec<String> {
    serde_json::from_str(&admin.recovery_codes).unwrap_or_default()
}

/// Enrols the admin's first authenticator, with the step of the code that confirmed it
/// and a set of recovery codes. Compare-and-set: of two concurrent enrolments only the
/// first takes effect (`false` for the other).
pub async fn enable_totp(
    db: &impl ConnectionTrait,
    id: Uuid,
    sealed: String,
    step: u64,
    recovery_hashes: &[String],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<bool, DbErr> {
    let codes = serde_json::to_string(recovery_hashes).map_err(|e| DbErr::Custom(e.to_string()))?;
    let res = master_admin::Entity::update_many()
        .col_expr(master_admin::Column::TotpSecret, Expr::value(Some(sealed)))
        .col_expr(master_admin::Column::TotpLastStep, Expr::value(Some(i64::try_from(step).unwrap_or(i64::MAX))))
        .col_expr(master_admin::Column::TotpEnabledAt, Expr::value(Some(now)))
        .col_expr(master_admin::Column::RecoveryCodes, Expr::value(codes))
        .filter(master_admin::Column::Id.eq(id))
        .filter(master_admin::Column::TotpSecret.is_null())
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Spends a TOTP step: only a step later than the last one used is accepted, in one
/// conditional statement, so a code works once even under concurrent attempts.
pub async fn claim_totp_step(db: &impl ConnectionTrait, id: Uuid, step: u64) -> Result<bool, DbErr> {
    let step = i64::try_from(step).unwrap_or(i64::MAX);
    let res = master_admin::Entity::update_many()
        .col_expr(master_admin::Column::TotpLastStep, Expr::value(Some(step)))
        .filter(master_admin::Column::Id.eq(id))
        .filter(Condition::any().add(master_admin::Column::TotpLastStep.is_null()).add(master_admin::Column::TotpLastStep.lt(step)))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Replaces the admin's recovery code hashes with `after` if they are still exactly
/// `expected` (compare-and-set): of two concurrent uses of one code only one succeeds.
pub async fn swap_recovery_codes(db: &impl ConnectionTrait, id: Uuid, expected: &str, after: &[String]) -> Result<bool, DbErr> {
    let after = serde_json::to_string(after).map_err(|e| DbErr::Custom(e.to_string()))?;
    let res = master_admin::Entity::update_many()
        .col_expr(master_admin::Column::RecoveryCodes, Expr::value(after))
        .filter(master_admin::Column::Id.eq(id))
        .filter(master_admin::Column::RecoveryCodes.eq(expected))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}
