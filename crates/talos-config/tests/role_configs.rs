#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::fs;

use attest_proto::machine::Role;
use attest_talos_config::{
    BaseConfig, ConfigProblem, MachineType, RoleConfigs, TalosConfigError, MAX_CONFIG_BYTES,
};
use common::{CONTROLPLANE, WORKER};

fn dir_with(files: &[(&str, &[u8])]) -> (tempfile::TempDir, RoleConfigs) {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in files {
        fs::write(dir.path().join(name), content).unwrap();
    }
    let configs = RoleConfigs::new(dir.path());
    (dir, configs)
}

fn problem(err: TalosConfigError) -> ConfigProblem {
    match err {
        TalosConfigError::Invalid { problem, .. } | TalosConfigError::Config(problem) => problem,
        other => panic!("not a content problem: {other:?}"),
    }
}

#[test]
fn loads_fixtures_for_their_roles() {
    let (_dir, configs) = dir_with(&[
        ("worker-app.yaml", WORKER.as_bytes()),
        ("worker-infra.yaml", WORKER.as_bytes()),
        ("controlplane.yaml", CONTROLPLANE.as_bytes()),
        ("generic.yaml", WORKER.as_bytes()),
    ]);
    for role in [Role::WorkerApp, Role::WorkerInfra, Role::Generic] {
        let base = configs.load(role).unwrap().unwrap();
        assert_eq!(base.machine_type(), MachineType::Worker);
        configs.validate(role).unwrap();
    }
    let cp = configs.validate(Role::Controlplane).unwrap();
    assert_eq!(cp.machine_type(), MachineType::Controlplane);
    assert_eq!(
        configs.path(Role::WorkerApp),
        configs.dir().join("worker-app.yaml")
    );
}

#[test]
fn missing_file_is_none_but_fails_validation() {
    let (_dir, configs) = dir_with(&[]);
    assert!(configs.load(Role::WorkerApp).unwrap().is_none());
    let err = configs.validate(Role::WorkerApp).unwrap_err();
    assert!(matches!(err, TalosConfigError::Missing { .. }));
    let path = configs.path(Role::WorkerApp);
    assert_eq!(
        err.to_string(),
        format!("role config {}: file does not exist", path.display())
    );
}

#[test]
fn windows_and_linux_take_no_talos_config() {
    let (_dir, configs) = dir_with(&[
        ("windows.yaml", WORKER.as_bytes()),
        ("linux.yaml", WORKER.as_bytes()),
    ]);
    for role in [Role::Windows, Role::Linux] {
        let err = configs.load(role).unwrap_err();
        assert!(matches!(err, TalosConfigError::NotTalosRole(r) if r == role));
        assert_eq!(
            err.to_string(),
            format!("role {role} takes no Talos config")
        );
        assert!(matches!(
            configs.validate(role),
            Err(TalosConfigError::NotTalosRole(_))
        ));
    }
}

#[test]
fn machine_type_must_fit_the_role() {
    let (_dir, configs) = dir_with(&[
        ("worker-app.yaml", CONTROLPLANE.as_bytes()),
        ("controlplane.yaml", WORKER.as_bytes()),
    ]);
    let err = configs.validate(Role::WorkerApp).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "role config {}: machine.type is controlplane but role worker-app needs worker",
            configs.path(Role::WorkerApp).display()
        )
    );
    let err = configs.load(Role::Controlplane).unwrap_err();
    assert!(err
        .to_string()
        .ends_with("machine.type is worker but role controlplane needs controlplane (or init)"));
}

#[test]
fn controlplane_accepts_init_and_generic_accepts_anything() {
    let init = CONTROLPLANE.replacen("type: controlplane", "type: init", 1);
    let (_dir, configs) = dir_with(&[
        ("controlplane.yaml", init.as_bytes()),
        ("generic.yaml", CONTROLPLANE.as_bytes()),
    ]);
    assert_eq!(
        configs
            .load(Role::Controlplane)
            .unwrap()
            .unwrap()
            .machine_type(),
        MachineType::Init
    );
    assert_eq!(
        configs.load(Role::Generic).unwrap().unwrap().machine_type(),
        MachineType::Controlplane
    );
}

#[test]
fn file_too_large() {
    // Valid YAML padded past the limit with a comment.
    let mut big = WORKER.as_bytes().to_vec();
    big.extend(b"# ");
    big.resize(usize::try_from(MAX_CONFIG_BYTES).unwrap() + 1, b'x');
    let (_dir, configs) = dir_with(&[("worker-app.yaml", &big)]);
    let err = configs.load(Role::WorkerApp).unwrap_err();
    assert!(matches!(err, TalosConfigError::TooLarge { limit, .. } if limit == MAX_CONFIG_BYTES));

    // Exactly at the limit is fine.
    big.truncate(usize::try_from(MAX_CONFIG_BYTES).unwrap());
    let (_dir, configs) = dir_with(&[("worker-app.yaml", &big)]);
    assert!(configs.load(Role::WorkerApp).unwrap().is_some());
}

#[test]
fn unreadable_and_non_utf8_files() {
    let (dir, configs) = dir_with(&[(
        "worker-app.yaml",
        b"version: v1alpha1\nmachine: {type: \xff}\n",
    )]);
    assert_eq!(
        problem(configs.load(Role::WorkerApp).unwrap_err()),
        ConfigProblem::NotUtf8
    );
    fs::create_dir(dir.path().join("worker-infra.yaml")).unwrap();
    let err = configs.load(Role::WorkerInfra).unwrap_err();
    assert!(matches!(err, TalosConfigError::Read { .. }), "{err:?}");
}

#[test]
fn validate_reports_a_base_that_cannot_be_rendered() {
    let (_dir, configs) = dir_with(&[(
        "worker-app.yaml",
        b"version: v1alpha1\nmachine:\n  type: worker\n  network: 3\n",
    )]);
    // Loading succeeds: the shape only matters once something is patched in.
    assert!(configs.load(Role::WorkerApp).unwrap().is_some());
    let err = configs.validate(Role::WorkerApp).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "role config {}: machine.network is not a mapping",
            configs.path(Role::WorkerApp).display()
        )
    );
}

#[test]
fn rejects_malformed_bases() {
    let cases: &[(&str, ConfigProblem)] = &[
        (
            "machine: {type: worker\n",
            ConfigProblem::NotYaml { line: Some(2), column: Some(1) },
        ),
        ("version: v1alpha1\nmachine: 3\n", ConfigProblem::NotMapping { field: "machine" }),
        ("version: v1alpha1\ncluster: {}\n", ConfigProblem::Missing { field: "machine" }),
        ("version: v1alpha1\nmachine: {}\n", ConfigProblem::Missing { field: "machine.type" }),
        ("version: v1alpha1\nmachine: {type: master}\n", ConfigProblem::UnknownMachineType),
        ("version: v1alpha1\nmachine: {type: [worker]}\n", ConfigProblem::UnknownMachineType),
        ("machine: {type: worker}\n", ConfigProblem::NoV1alpha1),
        ("", ConfigProblem::NoV1alpha1),
        (
            "apiVersion: v1alpha1\nkind: KmsgLogConfig\nname: x\nurl: tcp://10.0.0.1:1/\n",
            ConfigProblem::NoV1alpha1,
        ),
        (
            "version: v1alpha1\nmachine: {type: worker}\n---\nversion: v1alpha1\nmachine: {type: worker}\n",
            ConfigProblem::SeveralV1alpha1 { count: 2 },
        ),
        ("just some text\n", ConfigProblem::DocumentNotMapping { document: 1 }),
        (
            "version: v1alpha1\nmachine: {type: worker}\n---\n- a\n",
            ConfigProblem::DocumentNotMapping { document: 2 },
        ),
        ("version: v1alpha2\nmachine: {type: worker}\n", ConfigProblem::UnsupportedVersion { document: 1 }),
    ];
    for (text, expected) in cases {
        assert_eq!(&BaseConfig::parse(text).unwrap_err(), expected, "{text:?}");
        let (_dir, configs) = dir_with(&[("generic.yaml", text.as_bytes())]);
        assert_eq!(
            &problem(configs.load(Role::Generic).unwrap_err()),
            expected,
            "{text:?}"
        );
    }
}

#[test]
fn accepts_trailing_separator_and_leading_comments() {
    let text = format!("---\n{WORKER}---\n");
    let base = BaseConfig::parse(&text).unwrap();
    assert_eq!(base, BaseConfig::parse(WORKER).unwrap());
}

#[test]
fn errors_never_quote_the_file() {
    let secret = "c2VjcmV0LXRva2VuLXRoYXQtbXVzdC1ub3QtbGVhaw==";
    let texts = [
        // Syntax error right at the secret.
        format!("version: v1alpha1\nmachine:\n  type: worker\n  token: {secret}: \"\n"),
        // Duplicate key (the parser's message would quote it).
        format!("version: v1alpha1\nmachine: {{type: worker}}\n{secret}: 1\n{secret}: 2\n"),
        // Unknown machine.type.
        format!("version: v1alpha1\nmachine: {{type: {secret}}}\n"),
        // Unsupported version.
        format!("version: {secret}\nmachine: {{type: worker}}\n"),
    ];
    for text in &texts {
        let (_dir, configs) = dir_with(&[("worker-app.yaml", text.as_bytes())]);
        let err = configs.load(Role::WorkerApp).unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains(secret), "{shown}");
        assert!(!shown.contains("c2VjcmV0"), "{shown}");
    }
}
