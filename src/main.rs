//! The `palisade` command: thin on purpose; everything lives in the library.

use palisade::clock::{SharedClock, SystemClock};
use palisade::config::Config;
use palisade::service::bootstrap::{self, DemoSeed};
use palisade::startup::{self, BoxError};
use std::io::BufRead;
use std::process::ExitCode;
use std::sync::Arc;

const USAGE: &str = "usage: palisade <command>

commands:
  serve [--demo] [--bind ADDR]      run migrations and serve the API (--demo seeds demo data once)
  migrate                           apply database migrations and exit
  export-schema                     print the GraphQL schema (SDL)
  create-master-admin --email E     create a platform admin; password read from stdin
  seed-demo                         create the demo workspaces (once) and exit

configuration comes from the environment; see README.md";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first().map(String::as_str) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    if cmd == "export-schema" {
        print!("{}", palisade::graphql::sdl());
        return ExitCode::SUCCESS;
    }
    if matches!(cmd, "-h" | "--help" | "help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let mut config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("palisade: {e}");
            return ExitCode::from(2);
        }
    };
    palisade::telemetry::init(config.log_format);
    let result = match cmd {
        "serve" => {
            let mut demo = false;
            let mut rest = args[1..].iter();
            let mut bad = None;
            while let Some(a) = rest.next() {
                match a.as_str() {
                    "--demo" => demo = true,
                    "--bind" => match rest.next().map(|v| v.parse()) {
                        Some(Ok(addr)) => config.bind = addr,
                        _ => bad = Some("--bind needs an address like 127.0.0.1:8080"),
                    },
                    _ => bad = Some("unknown option for serve"),
                }
            }
            match bad {
                Some(msg) => Err(msg.into()),
                None => serve(config, demo).await,
            }
        }
        "migrate" => migrate(config).await,
        "seed-demo" => seed(config).await,
        "create-master-admin" => match (args.get(1).map(String::as_str), args.get(2)) {
            (Some("--email"), Some(email)) => create_master_admin(config, email).await,
            _ => Err("usage: palisade create-master-admin --email E (password on stdin)".into()),
        },
        _ => Err(format!("unknown command {cmd:?}\n\n{USAGE}").into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("palisade: {e}");
            ExitCode::FAILURE
        }
    }
}

fn clock() -> SharedClock {
    Arc::new(SystemClock)
}

async fn migrate(config: Config) -> Result<(), BoxError> {
    let db = startup::connect_database(&config).await?;
    startup::migrate(&db).await?;
    println!("migrations applied");
    Ok(())
}

fn print_demo(seed: &DemoSeed) {
    match seed {
        DemoSeed::AlreadyPresent => println!("demo workspaces already present (their password was printed when they were created)"),
        DemoSeed::Created { password, generated } => {
            println!("demo workspaces created: `demo` (users owner, manager, staff, sam, guest; `former` is inactive) and `acme` (owner)");
            if *generated {
                println!("demo password (shown once): {}", password.expose());
            } else {
                println!("demo password: the value of PALISADE_DEMO_PASSWORD");
            }
        }
    }
}

async fn seed(config: Config) -> Result<(), BoxError> {
    let state = startup::build_state(config, clock(), None).await?;
    print_demo(&bootstrap::seed_demo(&state).await.map_err(|e| e.detail())?);
    Ok(())
}

async fn create_master_admin(config: Config, email: &str) -> Result<(), BoxError> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']);
    let state = startup::build_state(config, clock(), None).await?;
    let id = bootstrap::create_master_admin(&state, email, password).await.map_err(|e| e.detail())?;
    println!("master admin created: {id}");
    Ok(())
}

async fn serve(config: Config, demo: bool) -> Result<(), BoxError> {
    let bind = config.bind;
    let state = startup::build_state(config, clock(), None).await?;
    if state.store.kind() == "memory" {
        tracing::warn!(
            "REDIS_URL is not set: sessions and rate limits live in this process (single instance only; restart signs everyone out)"
        );
    }
    if demo {
        print_demo(&bootstrap::seed_demo(&state).await.map_err(|e| e.detail())?);
    }
    let listener = tokio::net::TcpListener::bind(bind).await.map_err(|e| format!("cannot listen on {bind}: {e}"))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, store = state.store.kind(), graphiql = state.config.graphiql, "serving");
    println!("Palisade is listening on http://{addr}/graphql");
    startup::serve(state, listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
