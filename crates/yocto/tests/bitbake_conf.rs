//! The build configuration we generate, evaluated by BitBake's own configuration code
//! (`bb.cookerdata` from PyPI `bitbake-setup`, run by `bitbake_conf.py`): `conf/bblayers.conf`
//! spliced into a poky-shaped template, `auto.conf`, every `multiconfig/<name>.conf` and the
//! SRCREV include, read the way `bitbake` reads them, with the real `meta-secret` layer (its
//! layer.conf, machine and distro confs) and stand-ins for the other layers.
//!
//! The expected values come from `yocto/secretvm.toml` read with the `toml` crate (not our
//! parser) and from the lock the test writes: each multiconfig must see its MACHINE and TMPDIR,
//! every one the distro and the locked SRCREVs, and the SPDX 3.0 class in place of
//! defaultsetup.conf's SPDX 2.2 one (with our class that fixes its image SBOM task's order
//! hooked into that task), poky's sstate defaults overridden by the signed-sstate include,
//! and BBMULTICONFIG must keep the config's order. Recipes that give
//! build tasks the network, written here the ways layers do it, must be skipped, naming the
//! tasks; the fetch, shared-state and noexec tasks keep it.
//! The BitBake is 2.19's parser, not scarthgap's 2.8 (the only BitBake on PyPI).

#![allow(clippy::disallowed_methods)] // Runs the BitBake python.

use std::fs;
use std::os::unix::fs::symlink;
use std::process::Command;

use secretvm_testkit::{tool_from_env, workspace};
use secretvm_yocto::lock::{Lock, LockedRepo, Srcrev};
use secretvm_yocto::{conf, config};

/// poky's `bitbake.conf`, cut down to the includes whose order decides what our files see.
const BITBAKE_CONF: &str = "\
include conf/site.conf
include conf/auto.conf
include conf/local.conf
include conf/multiconfig/${BB_CURRENT_MC}.conf
include conf/machine/${MACHINE}.conf
include conf/distro/${DISTRO}.conf
include conf/distro/defaultsetup.conf
";

/// poky's `defaultsetup.conf` (72983ac), cut down to the classes every distro inherits.
const DEFAULTSETUP_CONF: &str = "\
INHERIT_DISTRO ?= \"debian devshell sstate license remove-libtool create-spdx\"
INHERIT += \"${INHERIT_DISTRO}\"
";

/// The classes INHERIT can name here: defaultsetup's, and the SPDX 3.0 class poky 72983ac has.
const STAND_IN_CLASSES: [&str; 7] =
    ["debian", "devshell", "sstate", "license", "remove-libtool", "create-spdx", "create-spdx-3.0"];

/// poky's `sstate.bbclass` (72983ac), cut down to its defaults for signed sstate, which our
/// `conf/sstate-signatures.inc` must override.
const SSTATE_DEFAULTS: &str = "\
SSTATE_SIG_KEY ?= \"\"
SSTATE_SIG_PASSPHRASE ?= \"\"
SSTATE_VERIFY_SIG ?= \"0\"
SSTATE_VALID_SIGS ??= \"\"
SSTATE_VALID_SIGS[vardepvalue] = \"\"
";

/// The signed-sstate settings the test adds to the config, and the key ids of its keyring.
const SIGNATURES: &str = "
[cache.sstate_signatures]
keys = \"yocto/sstate-signers.asc\"
signers = [\"3DD7B820432993C435418FBEAFB0941E1E07AEDD\"]
sign_key = \"/srv/yocto/sstate-signing-key.asc\"
";
const SIGNER: &str = "3DD7B820432993C435418FBEAFB0941E1E07AEDD";
const VALID_SIGS: [&str; 2] = ["0370BBBFF0D2F5E6", "AFB0941E1E07AEDD"];

/// poky's `bblayers.conf.sample` shape: the BBLAYERS assignment `conf::bblayers_conf` replaces.
const BBLAYERS_TEMPLATE: &str = "\
POKY_BBLAYERS_CONF_VERSION = \"2\"

BBPATH = \"${TOPDIR}\"
BBFILES ?= \"\"

BBLAYERS ?= \" \\
  ##OEROOT##/meta \\
  ##OEROOT##/meta-poky \\
  \"
";

/// Tasks as a recipe has them: the fetch with the network, as poky's base.bbclass gives it.
const TASKS: &str = "\
do_fetch[network] = \"1\"
python do_fetch() {
}
addtask fetch
python do_compile() {
}
addtask compile after do_fetch
python do_install() {
}
addtask install after do_compile
";

/// Recipes that give build tasks the network in the ways layers do, each with what the distro
/// must do with it: `None`, build it; `Some(tasks)`, skip it, naming exactly those tasks.
const NETWORK_RECIPES: [(&str, &str, Option<&[&str]>); 4] = [
    ("fetch-only_1.0.bb", "", None),
    // As meta-oe's etcd and influxdb recipes do.
    ("compile-network_1.0.bb", "do_compile[network] = \"1\"\n", Some(&["do_compile"])),
    // As poky's icecc class does, from an anonymous function.
    (
        "anon-network_1.0.bb",
        "python __anonymous() {\n    for task in (\"do_compile\", \"do_install\"):\n        \
         d.setVarFlag(task, \"network\", \"1\")\n}\n",
        Some(&["do_compile", "do_install"]),
    ),
    // As sstate.bbclass does for the shared-state tasks; and a noexec task, which runs nothing.
    (
        "sstate-network_1.0.bb",
        "SSTATETASKS += \"do_deploy\"\npython do_deploy() {\n}\naddtask deploy after do_install\n\
         do_deploy[network] = \"1\"\npython do_deploy_setscene() {\n}\naddtask deploy_setscene\n\
         do_deploy_setscene[network] = \"1\"\naddtask configure before do_compile\n\
         do_configure[noexec] = \"1\"\ndo_configure[network] = \"1\"\n",
        None,
    ),
];

const KERNEL_MACHINE: &str = "0123456789abcdef0123456789abcdef01234567";
const KERNEL_META: &str = "89abcdef0123456789abcdef0123456789abcdef";

#[test]
fn bitbake_reads_our_configuration_as_we_mean_it() {
    let Some(python) = tool_from_env("SECRETVM_BITBAKE_PYTHON") else { return };
    let text = fs::read_to_string(workspace().join("yocto/secretvm.toml")).unwrap();
    let root = tempfile::tempdir().unwrap();
    let ws = root.path();
    // The config, with the workspace mounted where the layers are here.
    let text =
        text.replace("workdir = \"/secret-vm-build\"", &format!("workdir = \"{}\"", ws.display()));
    let text = format!("{text}{SIGNATURES}");
    let config = config::parse("secretvm.toml", &text).unwrap();

    // The layers: the real meta-secret, stand-ins for the others.
    for layer in &config.layers {
        let dir = ws.join(config.layer_path(layer));
        if config.layer_path(layer) == "meta-secret" {
            symlink(workspace().join("meta-secret"), &dir).unwrap();
            continue;
        }
        let name = config.layer_path(layer).replace(['/', '.'], "-");
        let mut layer_conf = format!(
            "BBPATH .= \":${{LAYERDIR}}\"\nBBFILE_COLLECTIONS += \"{name}\"\n\
             LAYERSERIES_COMPAT_{name} = \"scarthgap\"\n"
        );
        if config.layer_path(layer).ends_with("poky/meta") {
            layer_conf.push_str("LAYERSERIES_CORENAMES = \"scarthgap\"\n");
            fs::create_dir_all(dir.join("conf/machine")).unwrap();
            fs::create_dir_all(dir.join("classes")).unwrap();
            fs::write(dir.join("conf/bitbake.conf"), BITBAKE_CONF).unwrap();
            fs::write(dir.join("conf/machine/qemux86-64.conf"), "# stand-in\n").unwrap();
            fs::write(dir.join("classes/base.bbclass"), "# stand-in\n").unwrap();
            for class in STAND_IN_CLASSES {
                let text = if class == "sstate" { SSTATE_DEFAULTS } else { "# stand-in\n" };
                fs::write(dir.join(format!("classes/{class}.bbclass")), text).unwrap();
            }
            fs::create_dir_all(dir.join("conf/distro")).unwrap();
            fs::write(dir.join("conf/distro/defaultsetup.conf"), DEFAULTSETUP_CONF).unwrap();
        }
        fs::create_dir_all(dir.join("conf")).unwrap();
        fs::write(dir.join("conf/layer.conf"), layer_conf).unwrap();
    }

    // The build directory, as `secretvm build` writes it.
    let lock = Lock {
        builder_image: None,
        repos: config
            .repos
            .iter()
            .map(|r| LockedRepo { name: r.name.clone(), commit: r.commit.clone() })
            .collect(),
        srcrevs: vec![
            Srcrev {
                recipe: "linux-yocto-dev".into(),
                variable: "SRCREV_machine".into(),
                commit: KERNEL_MACHINE.into(),
            },
            Srcrev {
                recipe: "linux-yocto-dev".into(),
                variable: "SRCREV_meta".into(),
                commit: KERNEL_META.into(),
            },
        ],
    };
    let build = ws.join("build");
    fs::create_dir_all(build.join("conf/multiconfig")).unwrap();
    let write = |name: &str, text: &str| fs::write(build.join("conf").join(name), text).unwrap();
    write(
        "bblayers.conf",
        &conf::bblayers_conf(BBLAYERS_TEMPLATE, &config, &config.workdir).unwrap(),
    );
    write("local.conf", "MACHINE ??= \"qemux86-64\"\nDISTRO ?= \"poky\"\n");
    write("auto.conf", &conf::auto_conf(&config));
    write("srcrev-lock.inc", &conf::srcrev_inc(&lock));
    let valid_sigs = VALID_SIGS.map(String::from);
    write("sstate-signatures.inc", &conf::sstate_signatures_inc(&valid_sigs, Some(SIGNER)));
    for m in &config.machines {
        write(&format!("multiconfig/{}.conf", m.name), &conf::multiconfig_conf(m));
    }

    let vars = [
        "MACHINE",
        "TMPDIR",
        "DISTRO",
        "DISTRO_VERSION",
        "PREFERRED_PROVIDER_virtual/kernel",
        "SRCREV_machine:pn-linux-yocto-dev",
        "SRCREV_meta:pn-linux-yocto-dev",
        "INHERIT",
        "IMAGE_VERSION_SUFFIX",
        "do_create_image_sbom_spdx[prefuncs]",
        "do_create_image_sbom_spdx[file-checksums]",
        "SSTATE_VERIFY_SIG",
        "SSTATE_VALID_SIGS",
        "SSTATE_SIG_KEY",
        "GPG_PATH",
        "GPG_BIN",
    ];
    let recipes = ws.join("recipes");
    fs::create_dir_all(&recipes).unwrap();
    let mut recipe_args = Vec::new();
    for (name, text, _) in NETWORK_RECIPES {
        let path = recipes.join(name);
        fs::write(&path, format!("LICENSE = \"MIT\"\n{TASKS}{text}")).unwrap();
        recipe_args.push("--recipe".into());
        recipe_args.push(path);
    }
    // BitBake imports the layer's lib/ (addpylib); nothing is written into the source tree.
    let out = Command::new(&python)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .arg(workspace().join("crates/yocto/tests/bitbake_conf.py"))
        .arg(&build)
        .args(&recipe_args)
        .args(vars)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let seen: serde_json::Value = serde_json::from_str(&stdout).unwrap();

    // Expected values, from the config read with the toml crate.
    let raw: toml::Value = toml::from_str(&text).unwrap();
    let machines = raw["machine"].as_array().unwrap();
    let names: Vec<&str> = machines.iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(seen["BBMULTICONFIG"], names.join(" "), "{stdout}");
    let topdir = build.display().to_string();
    let distro =
        fs::read_to_string(workspace().join("meta-secret/conf/distro/secret-vm.conf")).unwrap();
    let distro_version = distro
        .lines()
        .find_map(|l| l.strip_prefix("DISTRO_VERSION = \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("the distro conf sets DISTRO_VERSION");
    for m in machines {
        let name = m["name"].as_str().unwrap();
        let got = &seen[name];
        assert_eq!(got["MACHINE"], m["machine"].as_str().unwrap(), "{name}: {stdout}");
        let tmpdir = m["tmpdir"].as_str().unwrap().replace("${TOPDIR}", &topdir);
        assert_eq!(got["TMPDIR"], tmpdir, "{name}: {stdout}");
        assert_eq!(got["DISTRO"], raw["distro"].as_str().unwrap(), "{name}");
        // The distro conf of our layer was found and read for every multiconfig.
        assert_eq!(got["DISTRO_VERSION"], distro_version, "{name}: {stdout}");
        assert_eq!(got["SRCREV_machine:pn-linux-yocto-dev"], KERNEL_MACHINE, "{name}");
        assert_eq!(got["SRCREV_meta:pn-linux-yocto-dev"], KERNEL_META, "{name}");
        // SBOMs: the distro swaps defaultsetup's SPDX 2.2 class for SPDX 3.0.
        let inherit: Vec<&str> = got["INHERIT"].as_str().unwrap().split_whitespace().collect();
        assert!(inherit.contains(&"create-spdx-3.0"), "{name}: {inherit:?}");
        assert!(!inherit.contains(&"create-spdx"), "{name}: {inherit:?}");
        assert!(inherit.contains(&"sstate"), "{name}: {inherit:?}");
        // The class that makes the image SBOM task's order reproducible is inherited, and its
        // library (found through the layer's addpylib) is part of the task's checksum.
        assert!(inherit.contains(&"secret-vm-sbom-order"), "{name}: {inherit:?}");
        let prefuncs = got["do_create_image_sbom_spdx[prefuncs]"].as_str().unwrap_or_default();
        assert!(prefuncs.split_whitespace().any(|f| f == "secret_vm_sbom_order"), "{prefuncs}");
        let checksums =
            got["do_create_image_sbom_spdx[file-checksums]"].as_str().unwrap_or_default();
        let library = workspace().join("meta-secret/lib/secretvm/sbomorder.py");
        let listed = checksums.split_whitespace().filter_map(|f| f.strip_suffix(":True"));
        assert!(
            listed
                .map(std::path::Path::new)
                .any(|p| p.canonicalize().ok() == library.canonicalize().ok()),
            "{name}: {checksums}"
        );
        // Image file names, which the SBOMs record, carry the distro version, not the clock.
        assert_eq!(got["IMAGE_VERSION_SUFFIX"], format!("-{distro_version}"), "{name}");
        // Signed sstate: poky's defaults give way to what the keyring gave, and gpg looks in
        // the build's own home.
        assert_eq!(got["SSTATE_VERIFY_SIG"], "1", "{name}: {stdout}");
        assert_eq!(got["SSTATE_VALID_SIGS"], VALID_SIGS.join(" "), "{name}");
        assert_eq!(got["SSTATE_SIG_KEY"], SIGNER, "{name}");
        assert_eq!(got["GPG_PATH"], format!("{topdir}/secretvm-gnupg"), "{name}");
        // ... and runs gpg through the layer's wrapper, found through the layer's own path.
        let gpg_bin = got["GPG_BIN"].as_str().unwrap_or_default();
        assert_eq!(gpg_bin, format!("{}/meta-secret/scripts/secretvm-sstate-gpg", ws.display()));
        assert!(std::path::Path::new(gpg_bin).is_file(), "{gpg_bin}");
        // Only fetch and shared-state tasks get the network: a recipe that gives it to another
        // task is skipped, and the reason names every such task and no other.
        assert!(inherit.contains(&"secret-vm-task-network"), "{name}: {inherit:?}");
        for (recipe, _, expected) in NETWORK_RECIPES {
            let reason = &got["__skipped__"][recipe];
            let Some(tasks) = expected else {
                assert!(reason.is_null(), "{name}: {recipe} was skipped: {reason}");
                continue;
            };
            let reason = reason.as_str().unwrap_or_else(|| panic!("{name}: {recipe} was built"));
            // "<task> and <task> ask for the network ..."
            let (head, _) = reason
                .split_once(" ask")
                .unwrap_or_else(|| panic!("{name}: {recipe}: no task named: {reason}"));
            assert_eq!(head.split(" and ").collect::<Vec<_>>(), *tasks, "{name}: {reason}");
            assert!(reason.contains("for the network"), "{name}: {recipe}: {reason}");
        }
    }
    // Each machine conf of our layer chose its kernel.
    assert_eq!(seen["tdx"]["PREFERRED_PROVIDER_virtual/kernel"], "linux-yocto-dev", "{stdout}");
    assert_ne!(seen["sev"]["PREFERRED_PROVIDER_virtual/kernel"], "linux-yocto-dev", "{stdout}");
}
