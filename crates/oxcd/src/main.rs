//! `oxcd`: etcd's command line. Parses flags, `ETCD_*` variables or a YAML config file, starts
//! the member and serves its peer and client listeners.

mod cli;
mod logging;

use std::sync::Arc;

fn main() {
    let mode = cli::parse_or_exit();
    match &mode {
        cli::Mode::Member(cfg) => logging::init(cfg),
        // etcd's grpc-proxy always logs zap JSON to stderr.
        cli::Mode::GrpcProxy(_) => logging::init(&oxcd_bootstrap::Config {
            logger: oxcd_bootstrap::Logger::Zap,
            ..Default::default()
        }),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("oxcd")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => cli::fatal(&format!("cannot start the runtime: {e}")),
    };
    match mode {
        cli::Mode::Member(cfg) => runtime.block_on(run(*cfg)),
        cli::Mode::GrpcProxy(cfg) => runtime.block_on(grpc_proxy(*cfg)),
    }
}

async fn grpc_proxy(cfg: oxcd_proxy::GrpcProxyConfig) {
    tokio::select! {
        res = oxcd_proxy::run(cfg) => {
            if let Err(e) = res {
                eprintln!("{e}");
                std::process::exit(1);
            }
        }
        _ = wait_for_signal() => {}
    }
}

async fn run(cfg: oxcd_bootstrap::Config) {
    let plan = match oxcd_server::plan(&cfg) {
        Ok(p) => p,
        Err(e) => cli::fatal(&e.to_string()),
    };
    let tls = match oxcd_server::TlsSetup::from_config(&cfg) {
        Ok(t) => t,
        Err(e) => cli::fatal(&e.to_string()),
    };
    let acceptors = tls.client_acceptor().and_then(|client| {
        let peer = tls.peer_acceptor(cfg.experimental_peer_skip_client_san_verification)?;
        Ok((client, peer))
    });
    let (client_tls, peer_tls) = match acceptors {
        Ok(a) => a,
        Err(e) => cli::fatal(&e.to_string()),
    };
    // Listeners are bound before anything is written to disk, so a port conflict leaves the
    // data dir untouched.
    let mut peer_listeners = Vec::new();
    for url in &cfg.listen_peer_urls {
        match oxcd_server::serve::bind(url).await {
            Ok(l) => peer_listeners.push((url.scheme() == "https", l)),
            Err(e) => cli::fatal(&e),
        }
    }
    let mut client_listeners = Vec::new();
    for url in &cfg.listen_client_urls {
        match oxcd_server::serve::bind(url).await {
            Ok(l) => client_listeners.push((url.clone(), l)),
            Err(e) => cli::fatal(&e),
        }
    }
    let started = match oxcd_server::start(&cfg, plan, &tls).await {
        Ok(s) => s,
        Err(e) => cli::fatal(&e.to_string()),
    };
    for (https, l) in peer_listeners {
        let acceptor = if https { peer_tls.clone() } else { None };
        tokio::spawn(oxcd_server::serve::serve(
            l,
            started.peer_router.clone(),
            acceptor,
        ));
    }
    let client_service = oxcd_api::client_service(Arc::clone(&started.server));
    for (url, l) in client_listeners {
        let acceptor = if url.scheme() == "https" {
            client_tls.clone()
        } else {
            None
        };
        let shown = url.as_str().trim_end_matches('/').to_string();
        if acceptor.is_some() {
            tracing::info!("ready to serve client requests on {shown} (TLS)");
        } else {
            tracing::info!("ready to serve client requests on {shown}");
        }
        tokio::spawn(oxcd_server::serve::serve(
            l,
            client_service.clone(),
            acceptor,
        ));
    }
    wait_for_signal().await;
    tracing::info!("received terminate signal, shutting down");
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
