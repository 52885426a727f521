//! Runs one test body against a fresh server per backend. The server is
//! stopped and its database dropped even when the body panics (a failed
//! assertion), so a failure on SQLite does not leak a PostgreSQL database
//! or a listening server into the next test; the panic is then resumed
//! with the backend named.

use std::panic::AssertUnwindSafe;

use attest_server::config::Settings;
use futures::FutureExt;

use crate::TestApp;

/// `test` once per available backend with default settings.
pub async fn each_backend(test: impl AsyncFn(&TestApp)) {
    run(TestApp::spawn_all().await, test).await;
}

/// `test` once per available backend with settings adjusted by `tweak`.
pub async fn each_backend_with(tweak: impl Fn(&mut Settings), test: impl AsyncFn(&TestApp)) {
    run(TestApp::spawn_all_with(tweak).await, test).await;
}

/// `test` once per available backend on servers that trust the operator
/// roster's client certificates (see [`TestApp::spawn_all_operators`]).
pub async fn each_operator_backend(tweak: impl Fn(&mut Settings), test: impl AsyncFn(&TestApp)) {
    run(TestApp::spawn_all_operators(tweak).await, test).await;
}

async fn run(apps: Vec<TestApp>, test: impl AsyncFn(&TestApp)) {
    let mut apps = apps.into_iter();
    while let Some(app) = apps.next() {
        let outcome = AssertUnwindSafe(test(&app)).catch_unwind().await;
        let backend = app.backend();
        app.stop().await;
        if let Err(panic) = outcome {
            // The servers not yet run are stopped too before failing.
            for rest in apps {
                rest.stop().await;
            }
            eprintln!("test failed on the {backend} backend");
            std::panic::resume_unwind(panic);
        }
    }
}
