//! One test per rule, each on a small layer written here, with the expected findings (file,
//! line, rule, message) worked out by hand from that text.

use super::{Finding, Rule, check};

const CONFIG_FILE: &str = "yocto/secretvm.toml";
const CONFIG: &str = include_str!("../../../../yocto/secretvm.toml");
const COMMIT: &str = "3a3b12cbdae2e89b0e365eb01c378891d0d9037c";

/// The three machine confs the committed config needs, so that only the file under test speaks.
const MACHINES: &[(&str, &str)] = &[
    ("conf/machine/secret-vm-tdx.conf", "require conf/machine/qemux86-64.conf\n"),
    ("conf/machine/secret-vm-sev.conf", "require conf/machine/qemux86-64.conf\n"),
    ("conf/machine/secret-vm-gcp-tdx.conf", "require conf/machine/qemux86-64.conf\n"),
];

fn findings(files: &[(&str, &str)]) -> Vec<Finding> {
    let mut all: Vec<(&str, &str)> = MACHINES.to_vec();
    all.extend_from_slice(files);
    match check(&all, CONFIG_FILE, CONFIG) {
        Ok(f) => f,
        Err(e) => panic!("the committed config does not parse: {e}"),
    }
}

/// The findings as `file:line: rule` (the message is checked separately where it matters).
fn located(files: &[(&str, &str)]) -> Vec<String> {
    findings(files).iter().map(|f| format!("{}:{}: {}", f.file, f.line, f.rule)).collect()
}

#[test]
fn pinned_commits_pass() {
    let recipe = format!(
        "SRC_URI = \"git://example.org/a.git;protocol=https;nobranch=1 \\\n           file://x.patch\"\n\
         SRCREV = \"{COMMIT}\"\nSRCREV_meta:pn-linux = \"{COMMIT}\"\nSRCREV_FORMAT = \"machine_meta\"\n"
    );
    let patch = "Subject: x\n\nUpstream-Status: Pending\n---\n";
    assert_eq!(
        findings(&[("recipes-a/a/a_git.bb", &recipe), ("recipes-a/a/files/x.patch", patch)]),
        []
    );
}

#[test]
fn autorev_is_found_with_file_and_line() {
    let recipe = "SUMMARY = \"a\"\n# SRCREV = \"${AUTOREV}\" in a comment is fine\nSRCREV_machine ?= \"${AUTOREV}\"\n";
    let found = findings(&[("recipes-kernel/linux/linux-x.bbappend", recipe)]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found[0].to_string(),
        "recipes-kernel/linux/linux-x.bbappend:3: autorev: SRCREV_machine is \"${AUTOREV}\": \
         it follows a branch head; pin a commit (or let conf/srcrev-lock.inc set it)"
    );
}

#[test]
fn tags_are_found() {
    let recipe = "SRC_URI = \"git://github.com/fluent/fluent-bit.git;branch=master \\\n    \
                  gitsm://example.org/b.git;tag=v1.0;protocol=https\"\n\
                  SRCREV = \"v${PV}\"\nSRCREV_b = \"v1.2.3\"\nSRCREV_c = \"refs/tags/x\"\n";
    assert_eq!(
        located(&[("recipes-core/f/f_3.0.bb", recipe)]),
        [
            "recipes-core/f/f_3.0.bb:1: tag",
            "recipes-core/f/f_3.0.bb:3: tag",
            "recipes-core/f/f_3.0.bb:4: tag",
            "recipes-core/f/f_3.0.bb:5: tag",
        ]
    );
}

#[test]
fn branches_and_short_ids_are_not_commits() {
    let recipe = format!(
        "SRCREV = \"main\"\nSRCREV_a = \"3a3b12cb\"\nSRCREV_b = \"{}\"\nSRCREV_c = \"{COMMIT}0\"\n\
         SRCREV_d = '${{@d.getVar(\"X\")}}'\n",
        COMMIT.to_uppercase()
    );
    let found = findings(&[("recipes-a/a/a.inc", &recipe)]);
    let rules: Vec<(usize, Rule)> = found.iter().map(|f| (f.line, f.rule)).collect();
    assert_eq!(
        rules,
        [
            (1, Rule::SrcrevNotCommit),
            (2, Rule::SrcrevNotCommit),
            (3, Rule::SrcrevNotCommit),
            (4, Rule::SrcrevNotCommit),
            (5, Rule::SrcrevNotCommit)
        ]
    );
    assert_eq!(
        found[4].message,
        "SRCREV_d is \"${@d.getVar(\\\"X\\\")}\", an expression: write the commit it resolves to, \
         40 lowercase hex digits"
    );
    assert_eq!(
        found[1].message,
        "SRCREV_a is \"3a3b12cb\", expected a full commit id: 40 lowercase hex digits"
    );
}

#[test]
fn prod_images_get_no_debug_tweaks_through_includes() {
    let common = "IMAGE_INSTALL = \"busybox\"\nEXTRA_IMAGE_FEATURES += \"debug-tweaks\"\n";
    let prod_inc = "IMAGE_FEATURES:remove = \"debug-tweaks\"\n";
    let prod = "require img-common.inc\nrequire img-prod.inc\n";
    let dev = "require img-common.inc\n";
    let found = findings(&[
        ("recipes-core/images/img-common.inc", common),
        ("recipes-core/images/img-prod.inc", prod_inc),
        ("recipes-core/images/img-prod.bb", prod),
        ("recipes-core/images/img-dev.bb", dev),
    ]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found[0].to_string(),
        "recipes-core/images/img-common.inc:2: prod-debug-tweaks: EXTRA_IMAGE_FEATURES adds \
         debug-tweaks to the production image recipes-core/images/img-prod.bb"
    );
}

#[test]
fn prod_images_get_no_empty_passwords() {
    let prod = "inherit core-image\nIMAGE_FEATURES:append = \" allow-empty-password empty-root-password\"\n";
    assert_eq!(
        located(&[("recipes-core/images/x-prod.bb", prod)]),
        [
            "recipes-core/images/x-prod.bb:2: prod-debug-tweaks",
            "recipes-core/images/x-prod.bb:2: prod-debug-tweaks"
        ]
    );
}

#[test]
fn prod_images_get_no_ssh_key_setup() {
    let dev_inc = "IMAGE_INSTALL:append = \" sshd\"\n\
                   do_x() {\n    install -d ${IMAGE_ROOTFS}/home/root/.ssh\n    \
                   echo \"${SECRET_VM_DEV_SSH_KEY}\" > ${IMAGE_ROOTFS}/home/root/.ssh/authorized_keys\n}\n";
    let prod = "require x-common.inc\nrequire x-dev.inc\n";
    assert_eq!(
        located(&[
            ("recipes-core/images/x-common.inc", "IMAGE_INSTALL = \"busybox\"\n"),
            ("recipes-core/images/x-dev.inc", dev_inc),
            ("recipes-core/images/x-prod.bb", prod),
            ("recipes-core/images/x-dev.bb", "require x-dev.inc\n"),
        ]),
        [
            "recipes-core/images/x-dev.inc:4: prod-ssh-key",
            "recipes-core/images/x-prod.bb:2: prod-ssh-key",
        ]
    );
}

#[test]
fn built_in_ssh_keys_are_found_in_any_file() {
    let dev_inc = "do_x() {\n    echo \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample someone@example.org\" > k\n}\n";
    let found = findings(&[("recipes-core/images/y-dev.inc", dev_inc)]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].file, "recipes-core/images/y-dev.inc");
    assert_eq!(found[0].line, 2);
    assert_eq!(found[0].rule, Rule::SshKeyInLayer);
}

#[test]
fn wks_partitions_need_fixed_ids() {
    let wks = "# a comment\n\
               part /boot --source bootimg-efi --fstype=vfat --label boot --use-uuid\n\
               part / --source rootfs --fstype=ext4 --label root --uuid 52547b90-5650-4a7b-8415-26ee90804747 --fsuuid 0x1234\n\
               part /data --fstype=ext4 --uuid=0887d390-acd6-49a9-80a3-98612ba54589 --fsuuid=0887d390-acd6-49a9-80a3-98612ba54589\n\
               part /efi --fstype=vfat --uuid 0b6c2d40-de0a-4f8b-9725-8240b02c60d4 --fsuuid 0x123456789\n\
               bootloader --ptable gpt --timeout=0\n";
    // Sorted by file, line, rule, then message.
    let found = findings(&[("wic/gcp.wks", wks)]);
    let messages: Vec<String> = found.iter().map(Finding::to_string).collect();
    assert_eq!(
        messages,
        [
            "wic/gcp.wks:2: wks-unfixed-uuid: partition /boot has no --fsuuid: wic draws a random file-system id on every build",
            "wic/gcp.wks:2: wks-unfixed-uuid: partition /boot has no --uuid: wic draws a random partition GUID on every build",
            "wic/gcp.wks:3: wks-unfixed-uuid: partition /: --fsuuid \"0x1234\" is not valid for ext4, expected a UUID",
            "wic/gcp.wks:5: wks-unfixed-uuid: partition /efi: --fsuuid \"0x123456789\" is not valid for vfat, expected 0x and up to 8 hex digits",
        ]
    );
}

#[test]
fn msdos_wks_needs_only_fs_ids() {
    // With an msdos table wic derives the partition ids from the disk identifier, which it
    // seeds from SOURCE_DATE_EPOCH; only the file-system ids are random.
    let wks = "part / --fstype=ext4 --fsuuid 0887d390-acd6-49a9-80a3-98612ba54589\n\
               part /boot --fstype=vfat\nbootloader --ptable msdos\n";
    assert_eq!(located(&[("wic/x.wks", wks)]), ["wic/x.wks:2: wks-unfixed-uuid"]);
}

#[test]
fn machines_must_match_the_config() {
    let files: Vec<(&str, &str)> = vec![
        MACHINES[0],
        MACHINES[2],
        ("conf/machine/secret-vm-extra.conf", "require conf/machine/qemux86-64.conf\n"),
    ];
    let found = match check(&files, CONFIG_FILE, CONFIG) {
        Ok(f) => f,
        Err(e) => panic!("{e}"),
    };
    // The line of the sev machine's `machine = "secret-vm-sev"` in the committed config.
    let line = CONFIG.lines().position(|l| l == "machine = \"secret-vm-sev\"").unwrap() + 1;
    let messages: Vec<String> = found.iter().map(Finding::to_string).collect();
    assert_eq!(
        messages,
        [
            "conf/machine/secret-vm-extra.conf:1: machine-unknown: secret-vm-extra is not a machine of \
             yocto/secretvm.toml, expected one of secret-vm-tdx, secret-vm-sev, secret-vm-gcp-tdx"
                .to_owned(),
            format!(
                "yocto/secretvm.toml:{line}: machine-missing: machine sev (secret-vm-sev) has no \
                 conf/machine/secret-vm-sev.conf in the layer"
            ),
        ]
    );
}

#[test]
fn network_in_tasks_is_found() {
    let recipe = "inherit cargo\ndo_compile[network] = \"1\"\ndo_install[network] = \"0\"\n\
                  do_configure[network] = '1'\n";
    assert_eq!(
        located(&[("recipes-core/t/t.bb", recipe)]),
        ["recipes-core/t/t.bb:2: network-in-task", "recipes-core/t/t.bb:4: network-in-task"]
    );
}

#[test]
fn cargo_bin_without_vendoring_is_found_through_includes() {
    let files = [
        ("recipes-core/a/a.bb", "SUMMARY = \"a\"\ninherit cargo_bin\n"),
        ("recipes-core/b/b.bb", "require b.inc\ninherit secret-vm-cargo-vendor\n"),
        ("recipes-core/b/b.inc", "inherit pkgconfig cargo_bin\n"),
        ("recipes-core/c/c.bb", "require c.inc\n"),
        ("recipes-core/c/c.inc", "\ninherit cargo_bin # no vendoring\n"),
        ("recipes-core/d/d.bb", "inherit cargo\n"),
    ];
    assert_eq!(
        located(&files),
        ["recipes-core/a/a.bb:2: cargo-unvendored", "recipes-core/c/c.inc:2: cargo-unvendored"]
    );
}

#[test]
fn local_files_are_looked_for_where_bitbake_looks() {
    let recipe = "SRC_URI = \"file://in-files.cfg file://in-bpn.cfg \\\n    file://in-bp.cfg \\\n    \
                  file://tree/ file://${MACHINE}.cfg file://gone.patch;patchdir=..\"\n\
                  LIC_FILES_CHKSUM = \"file://LICENSE;md5=0\"\nEXTRA = \"file://other.cfg\"\n";
    let files = [
        ("recipes-a/a/a_1.0.bb", recipe),
        ("recipes-a/a/files/in-files.cfg", ""),
        ("recipes-a/a/a/in-bpn.cfg", ""),
        ("recipes-a/a/a-1.0/in-bp.cfg", ""),
        ("recipes-a/a/files/tree/src/main.rs", ""),
        // FILESEXTRAPATHS outside the layer: names not here may be there.
        ("recipes-b/b/b_git.bb", "require b.inc\nSRC_URI += \"file://from-core.patch\"\n"),
        ("recipes-b/b/b.inc", "FILESEXTRAPATHS:prepend := \"${COREBASE}/meta/recipes-b/b:\"\n"),
        // An append sees only the directories it adds.
        ("recipes-c/c/c_%.bbappend", "SRC_URI += \"file://c.cfg\"\n"),
        ("recipes-c/c/files/c.cfg", ""),
        (
            "recipes-d/d/d_%.bbappend",
            "FILESEXTRAPATHS:prepend := \"${THISDIR}/files:\"\nSRC_URI += \"file://d.cfg file://e.cfg\"\n",
        ),
        ("recipes-d/d/files/d.cfg", ""),
    ];
    let found = findings(&files);
    let text: Vec<String> = found.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "recipes-a/a/a_1.0.bb:1: local-file-missing: file://gone.patch is not in the layer \
             where BitBake looks for it for recipes-a/a/a_1.0.bb: recipes-a/a/a-1.0/, recipes-a/a/a/, \
             recipes-a/a/files/",
            "recipes-a/a/a_1.0.bb:5: local-file-missing: file://other.cfg is not in the layer \
             where BitBake looks for it for recipes-a/a/a_1.0.bb: recipes-a/a/a-1.0/, recipes-a/a/a/, \
             recipes-a/a/files/",
            "recipes-c/c/c_%.bbappend:1: local-file-missing: file://c.cfg: \
             recipes-c/c/c_%.bbappend adds no directory of this layer to FILESEXTRAPATHS \
             (FILESEXTRAPATHS:prepend := \"${THISDIR}/files:\"), so BitBake looks only beside \
             the recipe it appends",
            "recipes-d/d/d_%.bbappend:2: local-file-missing: file://e.cfg is not in the layer \
             where BitBake looks for it for recipes-d/d/d_%.bbappend: recipes-d/d/files/",
        ]
    );
}

#[test]
fn patches_need_an_upstream_status() {
    let files = [
        ("recipes-a/a/files/good.patch", "Subject: x\n\nUpstream-Status: Backport [abc]\n---\n"),
        ("recipes-a/a/files/none.patch", "Subject: x\n---\n--- a/f\n+++ b/f\n"),
        ("recipes-a/a/files/odd.diff", "From: x\nUpstream-Status: Maybe later\n"),
    ];
    let text: Vec<String> = findings(&files).iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "recipes-a/a/files/none.patch:1: patch-status: no Upstream-Status: line; say where \
             the change stands upstream (Pending, Submitted, Accepted, Backport, Denied, Inappropriate)",
            "recipes-a/a/files/odd.diff:2: patch-status: Upstream-Status is \"Maybe later\"; \
             expected one of Pending, Submitted, Accepted, Backport, Denied, Inappropriate",
        ]
    );
}

#[test]
fn a_bad_config_is_an_error() {
    let err = check(&[], CONFIG_FILE, "version = 1\n").map(|_| ()).unwrap_err();
    assert!(err.to_string().starts_with("yocto/secretvm.toml:"), "{err}");
}
