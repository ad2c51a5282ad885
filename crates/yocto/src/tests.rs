//! Tests against the committed config and hand-checked expectations.
//!
//! Sources: the pins, BBLAYERS order, machines, targets and artifact names come from
//! `shared/docs/yocto.md` §1.1 and §1.3 (upstream secret-vm-build at 1859e90); the conf
//! semantics from poky's `bitbake.conf` include order and its `bblayers.conf.sample` template
//! (yocto.md §4). The bitbake output here is written by hand, in the formats of bitbake 2.8's
//! knotty UI (`lib/bb/ui/knotty.py`), only for what the captured real output
//! (`tests/fixtures/knotty-*.log`, checked in `tests/knotty.rs`) does not show: a summary
//! entry without a `log:` line, output that ends inside the failed-task list, the terminal
//! progress bar and the teamcity UI.

use expect_test::{Expect, expect};

use crate::config::{self, Engine, Post};
use crate::lock::{self, Lock, LockedRepo, Mismatch};
use crate::progress::{Event, Parser, TaskRef};
use crate::{Error, conf};

const FILE: &str = "yocto/secretvm.toml";
const TEXT: &str = include_str!("../../../yocto/secretvm.toml");

fn committed() -> config::Config {
    match config::parse(FILE, TEXT) {
        Ok(c) => c,
        Err(e) => panic!("the committed config does not parse: {e}"),
    }
}

/// The error of the committed config with the first `from` replaced by `to`.
fn mutated(from: &str, to: &str) -> String {
    assert!(TEXT.contains(from), "{from:?} is not in the committed config");
    match config::parse(FILE, &TEXT.replacen(from, to, 1)) {
        Ok(_) => panic!("replacing {from:?} by {to:?} was accepted"),
        Err(e) => e.to_string(),
    }
}

/// The line (1-based) of the first occurrence of `needle` in the committed config.
fn line_of(needle: &str) -> usize {
    let at = TEXT.find(needle).unwrap_or_else(|| panic!("{needle:?} not found"));
    TEXT[..at].matches('\n').count() + 1
}

#[test]
fn committed_config_has_its_pins() {
    let c = committed();
    let repos: Vec<(&str, Option<&str>, &str)> =
        c.repos.iter().map(|r| (r.name.as_str(), r.branch.as_deref(), r.commit.as_str())).collect();
    // yocto.md §1.1 (upstream's submodules), except poky: the commit poky's tag yocto-5.0.15
    // names (`git rev-parse yocto-5.0.15^{}` in poky's repository), for its SPDX 3.0 classes.
    assert_eq!(
        repos,
        [
            ("poky", Some("scarthgap"), "72983ac391008ebceb45edc7a8f0f6d5f4fe715c"),
            ("meta-openembedded", Some("scarthgap"), "6c9f1f8d4538119803bf793747b65e4d23c33544"),
            (
                "meta-virtualization",
                Some("reproducible"),
                "bce9962c515089d62082953b795c0e80083c96e2"
            ),
            ("meta-rust-bin", None, "b8df9acaa750d6583a16c3dc59eaf45b1c03ae82"),
        ]
    );
    assert!(c.repos[2].url.contains("Dstack-TEE/meta-virtualization"));
    assert_eq!(c.distro, "secret-vm");
    assert_eq!(c.container.engine, Engine::Auto);
    assert!(c.container.base_image.starts_with("ubuntu:22.04@sha256:0e5e4a57"));
    assert_eq!(c.cache, config::Cache::default());
}

#[test]
fn committed_config_declares_the_floating_kernel_srcrevs() {
    let c = committed();
    let floating: Vec<(&str, &str, &str, &str)> = c
        .floating
        .iter()
        .map(|f| (f.recipe.as_str(), f.variable.as_str(), f.url.as_str(), f.branch.as_str()))
        .collect();
    // poky 72983ac (as at d243dbc), meta/recipes-kernel/linux/linux-yocto-dev.bb: KBRANCH and
    // SRC_URI.
    assert_eq!(
        floating,
        [
            (
                "linux-yocto-dev",
                "SRCREV_machine",
                "https://git.yoctoproject.org/linux-yocto-dev.git",
                "v6.9/standard/base"
            ),
            (
                "linux-yocto-dev",
                "SRCREV_meta",
                "https://git.yoctoproject.org/yocto-kernel-cache",
                "master"
            ),
        ]
    );
    let l = line_of("variable = \"SRCREV_meta\"");
    assert_eq!(
        mutated("variable = \"SRCREV_meta\"", "variable = \"PV\""),
        format!("{FILE}:{l}: floating[1].variable is \"PV\", expected SRCREV or SRCREV_<name>")
    );
    assert!(
        mutated("variable = \"SRCREV_meta\"", "variable = \"SRCREV_machine\"")
            .contains("floating \"linux-yocto-dev:SRCREV_machine\" is already defined on line")
    );
    assert!(
        mutated("url = \"https://git.yoctoproject.org/yocto-kernel-cache\"", "url = \"ftp://x\"")
            .contains("floating[1].url is \"ftp://x\", expected an https://")
    );
    assert!(mutated("branch = \"master\"", "branch = \"\"").contains("floating[1].branch is \"\""));
}

#[test]
fn committed_config_keeps_upstream_bblayers_order() {
    let c = committed();
    let layers: Vec<String> = c.layers.iter().map(|l| c.layer_path(l)).collect();
    // yocto.md §1.1: the template's three poky layers, then add-layer's order; upstream's
    // meta-nvidia (after meta-yocto-bsp) has no counterpart: our NVIDIA recipes are in
    // meta-secret.
    assert_eq!(
        layers,
        [
            "yocto/poky/meta",
            "yocto/poky/meta-poky",
            "yocto/poky/meta-yocto-bsp",
            "yocto/meta-rust-bin",
            "yocto/meta-openembedded/meta-oe",
            "yocto/meta-openembedded/meta-python",
            "yocto/meta-openembedded/meta-networking",
            "yocto/meta-openembedded/meta-filesystems",
            "yocto/meta-virtualization",
            "meta-secret",
        ]
    );
}

#[test]
fn committed_config_has_the_upstream_machines_and_artifacts() {
    let c = committed();
    let names: Vec<&str> = c.machines.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["tdx", "sev", "gcp-tdx"]);
    for m in &c.machines {
        // yocto.md §1.3: MACHINE, TMPDIR and the deploy directory per multiconfig.
        assert_eq!(m.machine, format!("secret-vm-{}", m.name));
        assert_eq!(m.tmpdir, format!("${{TOPDIR}}/tmp-{}", m.name));
        assert_eq!(m.deploy_dir, format!("tmp-{0}-glibc/deploy/images/secret-vm-{0}", m.name));
    }
    for m in &c.machines[..2] {
        let arts: Vec<(&str, &str, Post, &str)> = m
            .artifacts
            .iter()
            .map(|a| (a.name.as_str(), a.deploy.as_str(), a.post, a.target.as_str()))
            .collect();
        let rootfs = |v: &str| format!("secret-vm-rootfs-{v}-secret-vm-{}.rootfs.cpio", m.name);
        let initramfs = format!("secret-vm-initramfs-secret-vm-{}.rootfs.cpio.gz", m.name);
        // Then each image's SBOM, the link poky's create-spdx-3.0 deploys as
        // <IMAGE_LINK_NAME>.spdx.json (IMAGE_LINK_NAME is the images' links above without the
        // image type).
        let sboms = image_sboms(
            &m.name,
            &["initramfs", "rootfs-dev", "rootfs-prod", "rootfs-gpu-dev", "rootfs-gpu-prod"],
        );
        assert_eq!(
            arts,
            [
                ("bzImage", "bzImage", Post::Copy, "virtual/kernel"),
                ("initramfs.cpio.gz", initramfs.as_str(), Post::Copy, "secret-vm-initramfs"),
                ("ovmf.fd", "ovmf.fd", Post::Copy, "virtual/ovmf"),
                ("rootfs-dev.cpio", rootfs("dev").as_str(), Post::Iso, "secret-vm-rootfs-dev"),
                ("rootfs-prod.cpio", rootfs("prod").as_str(), Post::Iso, "secret-vm-rootfs-prod"),
                (
                    "rootfs-gpu-dev.cpio",
                    rootfs("gpu-dev").as_str(),
                    Post::Iso,
                    "secret-vm-rootfs-gpu-dev"
                ),
                (
                    "rootfs-gpu-prod.cpio",
                    rootfs("gpu-prod").as_str(),
                    Post::Iso,
                    "secret-vm-rootfs-gpu-prod"
                ),
            ]
            .into_iter()
            .chain(sboms.iter().map(|(name, deploy, target)| {
                (name.as_str(), deploy.as_str(), Post::Sbom, target.as_str())
            }))
            .collect::<Vec<_>>()
        );
        // The targets of upstream's build, each once, in the order of their artifacts.
        assert_eq!(
            m.targets(),
            [
                "virtual/kernel",
                "secret-vm-initramfs",
                "virtual/ovmf",
                "secret-vm-rootfs-dev",
                "secret-vm-rootfs-prod",
                "secret-vm-rootfs-gpu-dev",
                "secret-vm-rootfs-gpu-prod",
            ]
        );
    }
    let gcp = &c.machines[2];
    let arts: Vec<(&str, &str, Post, &str)> = gcp
        .artifacts
        .iter()
        .map(|a| (a.name.as_str(), a.deploy.as_str(), a.post, a.target.as_str()))
        .collect();
    assert_eq!(
        arts,
        [
            (
                "rootfs-dev.wic",
                "secret-vm-rootfs-dev-secret-vm-gcp-tdx.rootfs.wic",
                Post::GcpTar,
                "secret-vm-rootfs-dev"
            ),
            (
                "rootfs-prod.wic",
                "secret-vm-rootfs-prod-secret-vm-gcp-tdx.rootfs.wic",
                Post::GcpTar,
                "secret-vm-rootfs-prod"
            ),
        ]
        .into_iter()
        .chain(image_sboms("gcp-tdx", &["initramfs", "rootfs-dev", "rootfs-prod"]).iter().map(
            |(name, deploy, target)| (name.as_str(), deploy.as_str(), Post::Sbom, target.as_str())
        ))
        .collect::<Vec<_>>()
    );
    // The kernel and the initramfs come in as dependencies of the disk images' do_image_wic;
    // the initramfs is a target of its own only for its SBOM.
    assert_eq!(
        gcp.targets(),
        ["secret-vm-rootfs-dev", "secret-vm-rootfs-prod", "secret-vm-initramfs"]
    );
}

/// (name, deploy link, target) of the SBOMs of `machine`'s `images` (`rootfs-dev` is the image
/// secret-vm-rootfs-dev).
fn image_sboms(machine: &str, images: &[&str]) -> Vec<(String, String, String)> {
    images
        .iter()
        .map(|image| {
            (
                format!("{image}.spdx.json"),
                format!("secret-vm-{image}-secret-vm-{machine}.rootfs.spdx.json"),
                format!("secret-vm-{image}"),
            )
        })
        .collect()
}

#[test]
fn artifacts_select_their_targets_only() {
    let c = committed();
    let names = |c: &config::Config| -> Vec<(String, Vec<String>, Vec<String>)> {
        c.machines
            .iter()
            .map(|m| {
                let arts = m.artifacts.iter().map(|a| a.name.clone()).collect();
                let targets = m.targets().into_iter().map(str::to_owned).collect();
                (m.name.clone(), arts, targets)
            })
            .collect()
    };
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    // The boot chain of every machine that has one: gcp-tdx, which has none, drops out.
    let boot = c.select(&[], &["ovmf.fd", "bzImage", "initramfs.cpio.gz"]).unwrap();
    let chain = s(&["bzImage", "initramfs.cpio.gz", "ovmf.fd"]);
    let chain_targets = s(&["virtual/kernel", "secret-vm-initramfs", "virtual/ovmf"]);
    assert_eq!(
        names(&boot),
        [
            ("tdx".to_owned(), chain.clone(), chain_targets.clone()),
            ("sev".to_owned(), chain, chain_targets)
        ]
    );
    let one = c.select(&["gcp-tdx"], &["rootfs-prod.wic"]).unwrap();
    assert_eq!(
        names(&one),
        [("gcp-tdx".to_owned(), s(&["rootfs-prod.wic"]), s(&["secret-vm-rootfs-prod"]))]
    );
    // Nothing asked for: everything, as select_machines gives it, and the rest of the config.
    let sev = c.select(&["sev"], &[]).unwrap();
    assert_eq!(sev.machines.iter().collect::<Vec<_>>(), c.select_machines(&["sev"]).unwrap());
    assert_eq!((&sev.repos, &sev.layers, &sev.container), (&c.repos, &c.layers, &c.container));
    assert_eq!(c.select(&[], &[]).as_ref(), Ok(&c));
    // BBMULTICONFIG names the selected multiconfigs only, so bitbake parses no other.
    let auto = conf::auto_conf(&boot);
    assert!(auto.contains("BBMULTICONFIG = \"tdx sev\"\n"), "{auto}");

    let err = |m: &[&str], a: &[&str]| c.select(m, a).err().map(|e| e.to_string());
    assert_eq!(
        err(&["gcp-tdx"], &["bzImage"]).as_deref(),
        Some(
            "unknown artifact \"bzImage\" for machine(s) gcp-tdx, expected one of rootfs-dev.wic, rootfs-prod.wic, initramfs.spdx.json, rootfs-dev.spdx.json, rootfs-prod.spdx.json"
        )
    );
    assert_eq!(
        err(&["tdx", "gcp-tdx"], &["bzImage"]).as_deref(),
        Some(
            "machine \"gcp-tdx\" has none of the artifacts asked for (bzImage); it has rootfs-dev.wic, rootfs-prod.wic, initramfs.spdx.json, rootfs-dev.spdx.json, rootfs-prod.spdx.json"
        )
    );
    let e = err(&[], &["rootfs.iso"]).unwrap_or_default();
    assert!(e.starts_with("unknown artifact \"rootfs.iso\" for machine(s) tdx, sev, gcp-tdx, expected one of bzImage, initramfs.cpio.gz, ovmf.fd, rootfs-dev.cpio,"), "{e}");
    assert_eq!(
        err(&["snp"], &["bzImage"]).as_deref(),
        Some("unknown machine \"snp\", expected one of tdx, sev, gcp-tdx")
    );
}

#[test]
fn machines_are_selected_in_config_order() {
    let c = committed();
    let picked: Vec<&str> = c
        .select_machines(&["gcp-tdx", "tdx"])
        .unwrap_or_default()
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(picked, ["tdx", "gcp-tdx"]);
    assert_eq!(c.select_machines(&[]).map(|m| m.len()), Ok(3));
    let err = c.select_machines(&["tdx", "snp"]).err().map(|e| e.to_string());
    assert_eq!(err.as_deref(), Some("unknown machine \"snp\", expected one of tdx, sev, gcp-tdx"));
}

#[test]
fn bad_commit_names_file_key_line_and_expectation() {
    let line = line_of("commit = \"6c9f1f8d");
    assert_eq!(
        mutated("6c9f1f8d4538119803bf793747b65e4d23c33544", "6c9f1f8d45"),
        format!(
            "yocto/secretvm.toml:{line}: repo[1].commit is \"6c9f1f8d45\", expected a full commit id: 40 lowercase hex digits (no branch, tag or short id)"
        )
    );
    let e = mutated("72983ac391008ebceb45edc7a8f0f6d5f4fe715c", "scarthgap");
    assert!(e.contains("repo[0].commit is \"scarthgap\""), "{e}");
}

#[test]
fn duplicates_point_at_both_lines() {
    // The second meta-oe layer replaces meta-python.
    let first = line_of("path = \"meta-oe\"");
    let second = line_of("path = \"meta-python\"");
    assert_eq!(
        mutated("path = \"meta-python\"", "path = \"meta-oe\""),
        format!(
            "yocto/secretvm.toml:{second}: layer \"meta-openembedded:meta-oe\" is already defined on line {first}"
        )
    );
    let (tdx, sev) = (line_of("name = \"tdx\""), line_of("name = \"sev\""));
    assert_eq!(
        mutated("name = \"sev\"", "name = \"tdx\""),
        format!("yocto/secretvm.toml:{sev}: machine name \"tdx\" is already defined on line {tdx}")
    );
    let e = mutated("tmpdir = \"${TOPDIR}/tmp-sev\"", "tmpdir = \"${TOPDIR}/tmp-tdx\"");
    assert!(e.contains("machine tmpdir \"${TOPDIR}/tmp-tdx\" is already defined"), "{e}");
    let e = mutated("name = \"meta-rust-bin\"", "name = \"poky\"");
    assert!(e.contains("repo name \"poky\" is already defined"), "{e}");
}

#[test]
fn references_and_enumerations_list_what_is_known() {
    let line = line_of("repo = \"meta-rust-bin\"");
    assert_eq!(
        mutated("repo = \"meta-rust-bin\"", "repo = \"meta-rust\""),
        format!(
            "yocto/secretvm.toml:{line}: layer[3].repo is \"meta-rust\", expected one of poky, meta-openembedded, meta-virtualization, meta-rust-bin"
        )
    );
    let e = mutated("engine = \"auto\"", "engine = \"lxc\"");
    assert!(
        e.ends_with("container.engine is \"lxc\", expected auto, docker, podman, native"),
        "{e}"
    );
    let e = mutated("post = \"iso\"", "post = \"squashfs\"");
    assert!(e.ends_with("post is \"squashfs\", expected copy, iso, gcp-tar, sbom"), "{e}");
}

#[test]
fn sboms_are_named_and_deployed_as_sboms() {
    let tdx_sbom = "{ name = \"rootfs-dev.spdx.json\", deploy = \"secret-vm-rootfs-dev-secret-vm-tdx.rootfs.spdx.json\"";
    let line = line_of(tdx_sbom);
    assert_eq!(
        mutated(
            "secret-vm-rootfs-dev-secret-vm-tdx.rootfs.spdx.json",
            "secret-vm-rootfs-dev-secret-vm-tdx.rootfs.json"
        ),
        format!(
            "yocto/secretvm.toml:{line}: machine[0].artifact[8].deploy is \"secret-vm-rootfs-dev-secret-vm-tdx.rootfs.json\", expected a link ending in .spdx.json for post = \"sbom\" (<IMAGE_LINK_NAME>.spdx.json)"
        )
    );
    let e = mutated(tdx_sbom, "{ name = \"rootfs-dev.json\", deploy = \"x.spdx.json\"");
    assert!(
        e.ends_with(
            "name is \"rootfs-dev.json\", expected a name ending in .spdx.json for post = \"sbom\""
        ),
        "{e}"
    );
    // Which images an SBOM describes: the files deployed under its IMAGE_LINK_NAME.
    let sbom = "secret-vm-rootfs-dev-secret-vm-tdx.rootfs.spdx.json";
    assert!(Post::sbom_describes(sbom, "secret-vm-rootfs-dev-secret-vm-tdx.rootfs.cpio"));
    assert!(Post::sbom_describes(sbom, "secret-vm-rootfs-dev-secret-vm-tdx.rootfs.cpio.gz"));
    for other in [
        sbom,
        "secret-vm-rootfs-dev-secret-vm-tdx.rootfs.",
        "secret-vm-rootfs-dev-secret-vm-tdx.rootfs",
        "secret-vm-rootfs-dev-secret-vm-tdx.rootfsx.cpio",
        "secret-vm-rootfs-dev-secret-vm-sev.rootfs.cpio",
        "bzImage",
    ] {
        assert!(!Post::sbom_describes(sbom, other), "{other}");
    }
    assert!(!Post::sbom_describes("a.rootfs.cpio", "a.rootfs.cpio.gz"));
}

#[test]
fn values_are_checked_for_what_they_mean() {
    let line = line_of("target = \"virtual/ovmf\"");
    assert_eq!(
        mutated("target = \"virtual/ovmf\"", "target = \"\""),
        format!(
            "yocto/secretvm.toml:{line}: machine[0].artifact[2].target is \"\", expected a recipe or provider name without spaces and without an mc: prefix"
        )
    );
    let e = mutated("\"virtual/ovmf\"", "\"mc:tdx:virtual/ovmf\"");
    assert!(e.contains("machine[0].artifact[2].target is \"mc:tdx:virtual/ovmf\""), "{e}");
    assert!(e.contains("without an mc: prefix"), "{e}");
    let e = mutated("@sha256:0e5e4a57c2499249aafc3b40fcd541e9a456aab7296681a3994d631587203f97", "");
    assert!(
        e.contains("container.base_image is \"ubuntu:22.04\", expected an image pinned by digest"),
        "{e}"
    );
    let e = mutated("name = \"rootfs-dev.cpio\"", "name = \"rootfs-dev.img\"");
    assert!(e.ends_with("expected a name ending in .cpio for post = \"iso\""), "{e}");
    let e = mutated("distro = \"secret-vm\"", "distro = \"Secret VM\"");
    assert!(e.contains("distro is \"Secret VM\", expected a name"), "{e}");
    let e = mutated("tmpdir = \"${TOPDIR}/tmp-tdx\"", "tmpdir = '${TOPDIR}/\"x'");
    assert!(e.contains("without double quotes, backslashes or line breaks"), "{e}");
    let e = mutated("path = \"yocto/poky\"", "path = \"../poky\"");
    assert!(e.contains("repo[0].path is \"../poky\", expected a relative path"), "{e}");
    let e = mutated(
        "url = \"https://github.com/yoctoproject/poky.git\"",
        "url = \"http://github.com/yoctoproject/poky.git\"",
    );
    assert!(e.contains("expected an https://, git://, ssh:// or file:/// URL"), "{e}");
    let e = mutated("version = 1", "version = 2");
    assert!(e.ends_with("version is \"2\", expected 1"), "{e}");
}

#[test]
fn toml_errors_carry_line_and_column() {
    let line = line_of("distro = \"secret-vm\"");
    assert_eq!(
        mutated("distro = \"secret-vm\"", "distro = secret-vm"),
        format!(
            "yocto/secretvm.toml:{line}:10: string values must be quoted, expected literal string"
        )
    );
    let line = line_of("deploy_dir = \"tmp-sev");
    let e = mutated("deploy_dir = \"tmp-sev", "deploydir = \"tmp-sev");
    assert!(
        e.starts_with(&format!("yocto/secretvm.toml:{line}:1: unknown field `deploydir`")),
        "{e}"
    );
}

const CACHES: &str = "
[cache]
dl_dir = \"/srv/yocto/downloads\"
sstate_dir = \"/srv/yocto/sstate-cache\"
sstate_mirrors = \"file://.* https://sstate.example.org/PATH;downloadfilename=PATH\"
hashserve = \"auto\"
hashserve_upstream = \"hashserv.example.org:8686\"
";

#[test]
fn caches_are_validated_together() {
    let text = format!("{TEXT}{CACHES}");
    assert!(config::parse(FILE, &text).is_ok());
    let no_sstate = text.replace("sstate_dir = \"/srv/yocto/sstate-cache\"\n", "").replace(
        "sstate_mirrors = \"file://.* https://sstate.example.org/PATH;downloadfilename=PATH\"\n",
        "",
    );
    let e = config::parse(FILE, &no_sstate).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        e.contains(
            "cache.hashserve is \"auto\", expected sstate_dir or sstate_mirrors set as well"
        ),
        "{e}"
    );
    let e = config::parse(FILE, &text.replace("hashserve = \"auto\"", "hashserve = \"h:1\""))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.contains(
            "cache.hashserve_upstream is \"hashserv.example.org:8686\", expected only together"
        ),
        "{e}"
    );
}

/// Which team caches keep the network in the offline build (yocto.md §2.4: SSTATE_MIRRORS is
/// pairs of a regular expression and a URL; `auto` and `unix://` hash servers are sockets in
/// the build directory).
#[test]
fn caches_that_need_the_network_during_the_build() {
    let cache =
        |mirrors: Option<&str>, hashserve: Option<&str>, upstream: Option<&str>| config::Cache {
            sstate_mirrors: mirrors.map(Into::into),
            hashserve: hashserve.map(Into::into),
            hashserve_upstream: upstream.map(Into::into),
            ..config::Cache::default()
        };
    let local = "file://.* file:///srv/sstate/PATH";
    let remote = "file://.* file:///srv/sstate/PATH file://.* https://s.example.org/PATH";
    let cases = [
        (cache(None, None, None), false, false),
        (cache(Some(local), None, None), false, false),
        // The regular expression `file://.*` is not a mirror; the URL after it is.
        (cache(Some(remote), None, None), true, true),
        (cache(Some(local), Some("auto"), None), false, false),
        (cache(Some(local), Some("unix:///srv/hashserve.sock"), None), false, false),
        (cache(Some(local), Some("hashserv.example.org:8686"), None), false, true),
        (cache(Some(local), Some("ws://hashserv.example.org"), None), false, true),
        (cache(Some(local), Some("auto"), Some("hashserv.example.org:8686")), false, true),
    ];
    for (cache, remote_mirror, needs) in cases {
        assert_eq!(cache.remote_sstate_mirror(), remote_mirror, "{cache:?}");
        assert_eq!(cache.needs_network(), needs, "{cache:?}");
    }
}

const SIGNATURES: &str = "
[cache.sstate_signatures]
keys = \"keys/sstate-signers.asc\"
signers = [\"3dd7b820432993c435418fbeafb0941e1e07aedd\", \"5822A921B9E7D498AD4DE0D70370BBBFF0D2F5E6\"]
sign_key = \"/etc/secretvm/sstate-signing-key.asc\"
";

#[test]
fn sstate_signatures_are_parsed_and_validated() {
    let text = format!("{TEXT}{SIGNATURES}");
    let c = config::parse(FILE, &text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        c.cache.sstate_signatures,
        Some(config::SstateSignatures {
            keys: "keys/sstate-signers.asc".into(),
            // Uppercase, as gpg prints fingerprints, in the file's order.
            signers: vec![
                "3DD7B820432993C435418FBEAFB0941E1E07AEDD".into(),
                "5822A921B9E7D498AD4DE0D70370BBBFF0D2F5E6".into(),
            ],
            sign_key: Some("/etc/secretvm/sstate-signing-key.asc".into()),
        })
    );
    // Nothing of it survives --from-scratch, which takes nothing from a shared cache.
    assert_eq!(c.from_scratch().cache.sstate_signatures, None);

    let line = TEXT.matches('\n').count() + 1;
    let err = |from: &str, to: &str| {
        assert!(text.contains(from), "{from:?}");
        match config::parse(FILE, &text.replacen(from, to, 1)) {
            Ok(_) => panic!("replacing {from:?} by {to:?} was accepted"),
            Err(e) => e.to_string(),
        }
    };
    // A short key id is not a fingerprint.
    let e = err("\"3dd7b820432993c435418fbeafb0941e1e07aedd\"", "\"AFB0941E1E07AEDD\"");
    assert!(
        e.starts_with(&format!(
            "{FILE}:{}: cache.sstate_signatures.signers[0] is \"AFB0941E1E07AEDD\", expected an \
             OpenPGP v4 fingerprint",
            line + 3
        )),
        "{e}"
    );
    // The same key twice, spelled in two cases.
    let e = err(
        "\"5822A921B9E7D498AD4DE0D70370BBBFF0D2F5E6\"",
        "\"3DD7B820432993C435418FBEAFB0941E1E07AEDD\"",
    );
    assert!(
        e.contains("signers \"3DD7B820432993C435418FBEAFB0941E1E07AEDD\" is already defined"),
        "{e}"
    );
    let e = err("signers = [\"3dd7", "signers = [] # [\"3dd7");
    assert!(e.contains("cache.sstate_signatures.signers is \"[]\", expected at least one"), "{e}");
    let e = err("keys = \"keys/sstate-signers.asc\"", "keys = \"../sstate-signers.asc\"");
    assert!(e.contains(&format!("{FILE}:{}: cache.sstate_signatures.keys is", line + 2)), "{e}");
    let e = err("sign_key = \"/etc/secretvm/", "sign_key = \"/etc/../");
    assert!(e.contains("cache.sstate_signatures.sign_key is \"/etc/../"), "{e}");
    let e = err("keys = \"keys/sstate-signers.asc\"\n", "");
    assert!(e.contains("missing field `keys`"), "{e}");
    let e = err("sign_key = \"/etc", "signing_key = \"/etc");
    assert!(e.contains("unknown field `signing_key`"), "{e}");
}

#[test]
fn auto_conf_requires_the_sstate_signatures_include() {
    let c = config::parse(FILE, &format!("{TEXT}{SIGNATURES}")).ok();
    let auto = c.map(|c| conf::auto_conf(&c)).unwrap_or_default();
    assert!(
        auto.ends_with("require conf/srcrev-lock.inc\nrequire conf/sstate-signatures.inc\n"),
        "{auto}"
    );
}

/// What poky's sstate.bbclass reads (scarthgap: `SSTATE_VERIFY_SIG`, `SSTATE_VALID_SIGS`,
/// `SSTATE_SIG_KEY`; `oe.gpg_sign.LocalSigner` reads `GPG_PATH`).
#[test]
fn sstate_signatures_include() {
    let sigs = ["0370BBBFF0D2F5E6".to_owned(), "99B9A56B31F7A884".to_owned()];
    check(
        &conf::sstate_signatures_inc(&sigs, Some("3DD7B820432993C435418FBEAFB0941E1E07AEDD")),
        expect![[r#"
            # Generated by secretvm from [cache.sstate_signatures] and the keyring it made: edits here are lost.
            SSTATE_VERIFY_SIG = "1"
            SSTATE_VALID_SIGS = "0370BBBFF0D2F5E6 99B9A56B31F7A884"
            GPG_PATH = "${TOPDIR}/secretvm-gnupg"
            GPG_BIN = "${SECRET_VM_LAYERDIR}/scripts/secretvm-sstate-gpg"
            SSTATE_SIG_KEY = "3DD7B820432993C435418FBEAFB0941E1E07AEDD"
        "#]],
    );
    let verify_only = conf::sstate_signatures_inc(&sigs[..1], None);
    assert!(!verify_only.contains("SSTATE_SIG_KEY"), "{verify_only}");
}

fn check(actual: &str, expect: Expect) {
    expect.assert_eq(actual);
}

#[test]
fn auto_conf_without_caches() {
    check(
        &conf::auto_conf(&committed()),
        expect![[r#"
            # Generated by secretvm from yocto/secretvm.toml on every build: edits here are lost.
            DISTRO = "secret-vm"
            BBMULTICONFIG = "tdx sev gcp-tdx"
            require conf/srcrev-lock.inc
        "#]],
    );
}

#[test]
fn auto_conf_with_team_caches() {
    let c = config::parse(FILE, &format!("{TEXT}{CACHES}")).ok();
    check(
        &c.map(|c| conf::auto_conf(&c)).unwrap_or_default(),
        expect![[r#"
            # Generated by secretvm from yocto/secretvm.toml on every build: edits here are lost.
            DISTRO = "secret-vm"
            BBMULTICONFIG = "tdx sev gcp-tdx"
            require conf/srcrev-lock.inc
            DL_DIR = "/srv/yocto/downloads"
            SSTATE_DIR = "/srv/yocto/sstate-cache"
            SSTATE_MIRRORS = "file://.* https://sstate.example.org/PATH;downloadfilename=PATH"
            SSTATE_MIRROR_ALLOW_NETWORK = "1"
            BB_SIGNATURE_HANDLER = "OEEquivHash"
            BB_HASHSERVE = "auto"
            BB_HASHSERVE_UPSTREAM = "hashserv.example.org:8686"
        "#]],
    );
}

#[test]
fn bbmulticonfig_follows_declared_order() {
    // Moving gcp-tdx first changes BBMULTICONFIG accordingly: nothing is sorted.
    let gcp_at = TEXT.find("# The GCP kernel").unwrap_or(0);
    let cache_at = TEXT.find("# Team caches").unwrap_or(TEXT.len());
    let tdx_at = TEXT.find("[[machine]]\nname = \"tdx\"").unwrap_or(0);
    let reordered = format!(
        "{}{}{}{}",
        &TEXT[..tdx_at],
        &TEXT[gcp_at..cache_at],
        &TEXT[tdx_at..gcp_at],
        &TEXT[cache_at..]
    );
    let c = config::parse(FILE, &reordered).ok();
    let auto = c.map(|c| conf::auto_conf(&c)).unwrap_or_default();
    assert!(auto.contains("BBMULTICONFIG = \"gcp-tdx tdx sev\"\n"), "{auto}");
}

#[test]
fn multiconfig_files() {
    let c = committed();
    let all: String = c.machines.iter().map(conf::multiconfig_conf).collect();
    check(
        &all,
        expect![[r#"
            # Generated by secretvm from yocto/secretvm.toml on every build: edits here are lost.
            MACHINE = "secret-vm-tdx"
            TMPDIR = "${TOPDIR}/tmp-tdx"
            # Generated by secretvm from yocto/secretvm.toml on every build: edits here are lost.
            MACHINE = "secret-vm-sev"
            TMPDIR = "${TOPDIR}/tmp-sev"
            # Generated by secretvm from yocto/secretvm.toml on every build: edits here are lost.
            MACHINE = "secret-vm-gcp-tdx"
            TMPDIR = "${TOPDIR}/tmp-gcp-tdx"
        "#]],
    );
}

/// poky's `meta-poky/conf/templates/default/bblayers.conf.sample` (scarthgap).
const POKY_BBLAYERS_SAMPLE: &str = r#"# POKY_BBLAYERS_CONF_VERSION is increased each time build/conf/bblayers.conf
# changes incompatibly
POKY_BBLAYERS_CONF_VERSION = "2"

BBPATH = "${TOPDIR}"
BBFILES ?= ""

BBLAYERS ?= " \
  ##OEROOT##/meta \
  ##OEROOT##/meta-poky \
  ##OEROOT##/meta-yocto-bsp \
  "
"#;

#[test]
fn bblayers_conf_from_poky_template() {
    check(
        &conf::bblayers_conf(POKY_BBLAYERS_SAMPLE, &committed(), "/secret-vm-build")
            .unwrap_or_default(),
        expect![[r#"
            # POKY_BBLAYERS_CONF_VERSION is increased each time build/conf/bblayers.conf
            # changes incompatibly
            POKY_BBLAYERS_CONF_VERSION = "2"

            BBPATH = "${TOPDIR}"
            BBFILES ?= ""

            BBLAYERS = " \
              /secret-vm-build/yocto/poky/meta \
              /secret-vm-build/yocto/poky/meta-poky \
              /secret-vm-build/yocto/poky/meta-yocto-bsp \
              /secret-vm-build/yocto/meta-rust-bin \
              /secret-vm-build/yocto/meta-openembedded/meta-oe \
              /secret-vm-build/yocto/meta-openembedded/meta-python \
              /secret-vm-build/yocto/meta-openembedded/meta-networking \
              /secret-vm-build/yocto/meta-openembedded/meta-filesystems \
              /secret-vm-build/yocto/meta-virtualization \
              /secret-vm-build/meta-secret \
              "
        "#]],
    );
}

/// A native build has no container mount: the layers are where the workspace is on the host.
#[test]
fn bblayers_under_a_native_workspace() {
    let text = conf::bblayers(&committed(), "/home/me/secretvm");
    assert!(text.contains("  /home/me/secretvm/yocto/poky/meta \\\n"), "{text}");
    assert!(text.contains("  /home/me/secretvm/meta-secret \\\n"), "{text}");
    assert!(!text.contains("/secret-vm-build"), "{text}");
}

#[test]
fn bblayers_conf_rejects_a_template_without_bblayers() {
    let err = conf::bblayers_conf("BBPATH = \"${TOPDIR}\"\n", &committed(), "/w").err();
    assert_eq!(
        err.map(|e| e.to_string()).as_deref(),
        Some("bblayers.conf.sample: expected a line starting with `BBLAYERS ?=`")
    );
    let err = conf::bblayers_conf("BBLAYERS ?= \" \\\n  a \\\n", &committed(), "/w").err();
    assert!(matches!(err, Some(Error::Template { .. })));
}

const LOCK: &str = r#"# Generated by `cargo xtask lock --update`; checked by `cargo xtask lock --check`.
version = 1
builder_image = "sha256:1111111111111111111111111111111111111111111111111111111111111111"

[[repo]]
name = "poky"
commit = "72983ac391008ebceb45edc7a8f0f6d5f4fe715c"

[[repo]]
name = "meta-openembedded"
commit = "6c9f1f8d4538119803bf793747b65e4d23c33544"

[[repo]]
name = "meta-virtualization"
commit = "bce9962c515089d62082953b795c0e80083c96e2"

[[repo]]
name = "meta-rust-bin"
commit = "b8df9acaa750d6583a16c3dc59eaf45b1c03ae82"

[[srcrev]]
recipe = "fluent-bit"
variable = "SRCREV"
commit = "2222222222222222222222222222222222222222"

[[srcrev]]
recipe = "linux-yocto-dev"
variable = "SRCREV_machine"
commit = "3333333333333333333333333333333333333333"

[[srcrev]]
recipe = "linux-yocto-dev"
variable = "SRCREV_meta"
commit = "4444444444444444444444444444444444444444"
"#;

fn lock() -> Lock {
    match lock::parse("yocto/secretvm.lock", LOCK) {
        Ok(l) => l,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn lock_round_trips_in_canonical_form() {
    let l = lock();
    assert_eq!(lock::render(&l), LOCK);
    let mut shuffled = l.clone();
    shuffled.srcrevs.reverse();
    assert_eq!(lock::render(&shuffled), LOCK);
    assert_eq!(lock::parse("x", &lock::render(&shuffled)), Ok(l));
}

/// The fixture lock without its fluent-bit SRCREV, which the committed config does not declare
/// floating (the layer pins fluent-bit's commit itself).
fn lock_of_committed_config() -> Lock {
    let mut l = lock();
    l.srcrevs.retain(|s| s.recipe != "fluent-bit");
    l
}

#[test]
fn lock_agrees_with_the_committed_config() {
    assert_eq!(lock::check(&committed(), &lock_of_committed_config()), []);
}

#[test]
fn lock_check_lists_every_mismatch() {
    let mut l = lock();
    l.builder_image = None;
    l.srcrevs.retain(|s| s.variable != "SRCREV_meta");
    l.repos.retain(|r| r.name != "meta-rust-bin");
    l.repos[0].commit = "0".repeat(40);
    l.repos.push(LockedRepo { name: "meta-security".into(), commit: "5".repeat(40) });
    let found: Vec<String> = lock::check(&committed(), &l).iter().map(|m| m.to_string()).collect();
    assert_eq!(
        found,
        [
            "repository \"poky\" is at 72983ac391008ebceb45edc7a8f0f6d5f4fe715c in the config but 0000000000000000000000000000000000000000 in the lock",
            "repository \"meta-rust-bin\" is in the config but not in the lock",
            "repository \"meta-security\" is in the lock but not in the config",
            "linux-yocto-dev:SRCREV_meta floats in the config ([[floating]]) but the lock does not pin it (`secretvm lock --update --resolve` records its branch's commit)",
            "the lock pins fluent-bit:SRCREV, which the config does not declare floating",
            "the lock records no builder image digest",
        ]
    );
    assert!(matches!(lock::check(&committed(), &l)[1], Mismatch::MissingRepo { .. }));
}

#[test]
fn lock_errors() {
    let err = |from: &str, to: &str| {
        lock::parse("yocto/secretvm.lock", &LOCK.replacen(from, to, 1))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    assert_eq!(
        err("3333333333333333333333333333333333333333", "v6.9"),
        "yocto/secretvm.lock:29: srcrev[1].commit is \"v6.9\", expected a full commit id: 40 lowercase hex digits (no branch, tag or short id)"
    );
    assert_eq!(
        err("SRCREV_meta", "SRCREV_machine"),
        "yocto/secretvm.lock:32: srcrev \"linux-yocto-dev:SRCREV_machine\" is already defined on line 27"
    );
    assert!(
        err("variable = \"SRCREV\"", "variable = \"PV\"")
            .contains("expected SRCREV or SRCREV_<name>")
    );
    assert!(err("sha256:1111", "sha512:1111").contains("builder_image is"));
    assert!(
        err("name = \"meta-rust-bin\"", "name = \"poky\"")
            .contains("repo name \"poky\" is already defined on line 6")
    );
}

#[test]
fn srcrev_include() {
    check(
        &conf::srcrev_inc(&lock()),
        expect![[r#"
            # Generated by secretvm from yocto/secretvm.lock on every build: edits here are lost.
            SRCREV:pn-fluent-bit = "2222222222222222222222222222222222222222"
            SRCREV_machine:pn-linux-yocto-dev = "3333333333333333333333333333333333333333"
            SRCREV_meta:pn-linux-yocto-dev = "4444444444444444444444444444444444444444"
        "#]],
    );
    let empty = Lock { builder_image: None, repos: vec![], srcrevs: vec![] };
    assert_eq!(conf::srcrev_inc(&empty).lines().count(), 1);
}

fn events(log: &str) -> Vec<Event> {
    let mut p = Parser::default();
    let mut out: Vec<Event> = log.lines().flat_map(|l| p.line(l)).collect();
    out.extend(p.finish());
    out
}

fn task(mc: &str, variant: Option<&str>, file: &str, recipe: &str, t: &str) -> TaskRef {
    TaskRef {
        mc: Some(mc.into()),
        variant: variant.map(Into::into),
        file: file.into(),
        recipe: recipe.into(),
        task: t.into(),
    }
}

#[test]
fn progress_summary_edge_cases() {
    // Two failures, the first without a log line, and the output ending inside the list.
    let log = "\
NOTE: Tasks Summary: Attempted 10 tasks of which 0 didn't need to be rerun and all succeeded.
ERROR: Nothing PROVIDES 'virtual/ovmf'

Summary: 2 tasks failed:
  /l/a_1.0.bb:do_fetch
  mc:gcp-tdx:/l/b.bb:do_install
";
    let got = events(log);
    assert_eq!(
        got,
        vec![
            Event::TasksSummary { attempted: 10, not_rerun: 0, failed: 0 },
            Event::Error { message: "Nothing PROVIDES 'virtual/ovmf'".into() },
            Event::FailedTask {
                task: TaskRef {
                    mc: None,
                    variant: None,
                    file: "/l/a_1.0.bb".into(),
                    recipe: "a".into(),
                    task: "do_fetch".into()
                },
                log: None,
            },
            Event::FailedTask {
                task: task("gcp-tdx", None, "/l/b.bb", "b", "do_install"),
                log: None
            },
        ]
    );
}

#[test]
fn parse_percent_from_a_terminal_bar_or_teamcity() {
    let got = events(
        "Parsing recipes:  12% |####      | ETA:  0:00:40\rParsing recipes:  45% |#####     | ETA:  0:00:10\n\
         ##teamcity[progressMessage 'Parsing recipes: 50%']\n\
         Parsing recipes: 250% |\n\
         NOTE: Running task x of 3 (/l/a.bb:do_fetch)\n\
         some unrelated line\n",
    );
    assert_eq!(
        got,
        vec![Event::ParseProgress { percent: 45 }, Event::ParseProgress { percent: 50 }]
    );
}

#[test]
fn truncated_input_is_an_error_or_a_value_never_a_panic() {
    for (at, _) in TEXT.char_indices().step_by(7) {
        let _ = config::parse(FILE, &TEXT[..at]);
    }
    for (at, _) in LOCK.char_indices() {
        let _ = lock::parse("x", &LOCK[..at]);
    }
    // Real output, cut everywhere.
    let build_log = include_str!("../tests/fixtures/knotty-ovmf.log");
    for (at, _) in build_log.char_indices() {
        let _ = events(&build_log[..at]);
        let _ = events(&build_log[at..]);
    }
}

#[test]
fn another_build_directory_and_a_build_from_scratch() {
    let c = committed();
    assert_eq!(c.build_dir, "build");
    let repro = c.with_build_dir("build-repro/").unwrap();
    assert_eq!(repro.build_dir, "build-repro");
    let machines: Vec<&config::Machine> = repro.machines.iter().take(1).collect();
    let inv = crate::runner::build_invocation(
        &repro,
        std::path::Path::new("/w"),
        &machines,
        &[],
        crate::runner::Engine::Docker,
        crate::runner::User { uid: 1000, gid: 1000 },
        &[],
    );
    assert!(inv.argv[2].contains("oe-init-build-env build-repro "), "{:?}", inv.argv);
    for bad in ["", "../build", "/tmp/build", "a/../b", "build dir", "b\"x", "./build"] {
        let e = c.with_build_dir(bad).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.starts_with(&format!("--build-dir is {bad:?}, expected a relative path")), "{e}");
    }

    let shared = config::parse(FILE, &format!("{TEXT}{CACHES}")).unwrap();
    let scratch = shared.from_scratch();
    assert_eq!(scratch.cache.dl_dir.as_deref(), Some("/srv/yocto/downloads"));
    assert_eq!(
        scratch.cache,
        config::Cache { dl_dir: shared.cache.dl_dir.clone(), ..Default::default() }
    );
    let auto = conf::auto_conf(&scratch);
    assert!(!auto.contains("SSTATE") && !auto.contains("HASHSERVE"), "{auto}");
    assert!(auto.contains("DL_DIR = \"/srv/yocto/downloads\"\n"), "{auto}");
    assert_eq!(scratch.machines, shared.machines);
}
