//! Mail that tells someone of a change: sent once the change has committed, so that
//! nobody is told of something that was rolled back.

use crate::audit::Tx;
use crate::state::AppState;

/// Sends a mail once the mutation has committed; a failure is logged, not raised
/// (the change it reports has already happened).
pub fn mail_after_commit(state: &AppState, tx: &Tx<'_>, to_name: String, to_email: String, subject: String, body: String) {
    let mailer = state.mailer.clone();
    tx.after_commit(move || {
        Box::pin(async move {
            if let Err(e) = mailer.send(&to_name, &to_email, &subject, &body).await {
                tracing::error!(error = %e.detail(), "could not send mail");
            }
        })
    });
}
