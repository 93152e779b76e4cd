//! Schema migrations, written with sea-query's builder so that one migration runs on
//! SQLite and PostgreSQL alike. Migrations are additive: later capabilities add tables
//! and columns in new files and never rewrite an applied one.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_foundation;
mod m20261122_000002_roles;
mod m20261122_000003_customers;
mod m20261122_000004_products;
mod m20261122_000005_orders;
mod m20261122_000006_tickets;
mod m20261122_000007_payments;
mod m20261122_000008_quotes_jobs_invoices;
mod m20261122_000009_account_security;
mod m20261122_000010_audit_chain;
mod m20261202_000011_accountability;
mod m20261207_000012_master_two_factor;
mod m20261207_000013_record_versions;
mod m20261207_000014_list_indexes;
mod m20261208_000015_owner_record_limit;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_foundation::Migration),
            Box::new(m20261122_000002_roles::Migration),
            Box::new(m20261122_000003_customers::Migration),
            Box::new(m20261122_000004_products::Migration),
            Box::new(m20261122_000005_orders::Migration),
            Box::new(m20261122_000006_tickets::Migration),
            Box::new(m20261122_000007_payments::Migration),
            Box::new(m20261122_000008_quotes_jobs_invoices::Migration),
            Box::new(m20261122_000009_account_security::Migration),
            Box::new(m20261122_000010_audit_chain::Migration),
            Box::new(m20261202_000011_accountability::Migration),
            Box::new(m20261207_000012_master_two_factor::Migration),
            Box::new(m20261207_000013_record_versions::Migration),
            Box::new(m20261207_000014_list_indexes::Migration),
            Box::new(m20261208_000015_owner_record_limit::Migration),
        ]
    }
}
