# Offline Rust builds on top of meta-rust-bin's cargo_bin class.
#
# cargo_bin runs `cargo build` with the network (the upstream recipes set
# do_compile[network] = "1"), so what a build compiles depends on the day it runs. With this
# class, cargo reads only the crates that bitbake's crate fetcher downloaded, each checked
# against the sha256 in the recipe's ${BPN}-crates.inc, and cargo is run --frozen: no network,
# and Cargo.lock must already say exactly what is built.
#
# A recipe inherits cargo_bin and this class, then `require ${BPN}-crates.inc`. That file is
# written, from the Cargo.lock of the pinned source, by poky's cargo-update-recipe-crates
# class, which this one inherits:
#     bitbake -c update_crates <recipe>
# (run once with the network, then commit the file).
#
# Crates that Cargo.lock takes from git are not in that file. The recipe fetches each git
# repository with bitbake's git fetcher (a SRC_URI entry with name= and destsuffix=, and
# SRCREV_<name> the commit Cargo.lock names) and tells this class where each crate is:
#     SECRET_VM_CARGO_GIT[<crate>] = "<repository URL as in Cargo.lock> <directory under WORKDIR>"
# for example
#     SECRET_VM_CARGO_GIT[rocket_http] = "https://github.com/rwf2/Rocket cargo_git/rocket/core/http"
# cargo then builds those crates from the checkouts ([patch] entries in the cargo config), and
# their git source lines leave Cargo.lock, as --frozen requires (the original stays beside it as
# Cargo.lock.orig). A git crate of Cargo.lock that no flag names stops the build, naming it.

inherit cargo-update-recipe-crates

# Where bitbake's crate fetcher unpacks crate:// sources (bb.fetch2.crate, one directory per
# crate with a .cargo-checksum.json): WORKDIR/cargo_home/bitbake, fixed by the fetcher.
SECRET_VM_CARGO_VENDOR_DIR = "${WORKDIR}/cargo_home/bitbake"

# --frozen is --locked plus --offline: a Cargo.lock that disagrees with Cargo.toml, or a crate
# that is not vendored, stops the build instead of being resolved from the network.
EXTRA_CARGO_FLAGS:append = " --frozen"

# Build paths stay out of the binaries. cargo hands rustc the crates under WORKDIR by absolute
# path, and those paths end up in the debug info and so in the linker's build id, which the
# stripped binary keeps: built in another build directory (another TOPDIR, or repro-check's
# second build), the same recipe gave other bytes, and with them another initramfs and other
# measurements. poky's own Rust classes map WORKDIR away (rust-common's RUST_DEBUG_REMAP);
# meta-rust-bin's cargo_bin does not, so this class does it, with the same mapping.
EXTRA_RUSTFLAGS:append = " --remap-path-prefix=${WORKDIR}=${TARGET_DBGSRC_DIR}"
# The same for C and assembly that crates compile with the cc crate from their own sources
# (ring's assembly, a -sys crate's C, a workspace member beside S): they are under WORKDIR,
# and their paths went into __FILE__ strings and debug info. cc takes its flags from
# CFLAGS_<target triple> first, then HOST_CFLAGS (or TARGET_CFLAGS when it cross-compiles),
# then CFLAGS. meta-rust-bin gives an x86-64 target the build host's own triple, so cc does
# not cross-compile, and takes HOST_CFLAGS, which cargo_bin sets empty: poky's CFLAGS and its
# DEBUG_PREFIX_MAP (which maps only S, B and the sysroots anyway) never reach it. So the map is
# handed to cc under the target triple's name when the two triples are the same, and prepended
# to DEBUG_PREFIX_MAP for the other case (prepended, so that GCC, which tries the last option
# first, still maps S, B and the sysroots as poky does).
SECRET_VM_CC_PREFIX_MAP = "-ffile-prefix-map=${WORKDIR}=${TARGET_DBGSRC_DIR}"
DEBUG_PREFIX_MAP:prepend = "${SECRET_VM_CC_PREFIX_MAP} "
do_compile:prepend() {
    if [ "${RUST_TARGET}" = "${RUST_BUILD}" ]; then
        secret_vm_triple=$(echo "${RUST_TARGET}" | tr - _)
        export "CFLAGS_$secret_vm_triple=${SECRET_VM_CC_PREFIX_MAP}"
        export "CXXFLAGS_$secret_vm_triple=${SECRET_VM_CC_PREFIX_MAP}"
    fi
}

# Written after cargo_bin's configure, into the CARGO_HOME cargo_bin exports.
secret_vm_cargo_vendor_config() {
    if [ ! -f "${SECRET_VM_CARGO_LOCK}" ]; then
        bbfatal "${SECRET_VM_CARGO_LOCK} does not exist: --frozen builds need the project's Cargo.lock"
    fi
    if [ ! -d "${SECRET_VM_CARGO_VENDOR_DIR}" ]; then
        if grep -q '^source = "registry+' "${SECRET_VM_CARGO_LOCK}"; then
            bbfatal "no vendored crates in ${SECRET_VM_CARGO_VENDOR_DIR}: does the recipe require ${BPN}-crates.inc (bitbake -c update_crates ${PN})?"
        fi
        # Cargo.lock names no registry crate (a package without dependencies, like
        # secretvm-guest): there is nothing to vendor, and cargo needs the directory all the same.
        mkdir -p "${SECRET_VM_CARGO_VENDOR_DIR}"
    fi
    mkdir -p "${CARGO_HOME}"
    cat > "${CARGO_HOME}/config.toml" <<SECRET_VM_CARGO_EOF
[source.bitbake]
directory = "${SECRET_VM_CARGO_VENDOR_DIR}"

[source.crates-io]
replace-with = "bitbake"

[net]
offline = true
SECRET_VM_CARGO_EOF
}
# The Cargo.lock cargo reads: beside the manifest cargo_bin builds.
SECRET_VM_CARGO_LOCK ?= "${@os.path.join(os.path.dirname(d.getVar('CARGO_MANIFEST_PATH')), 'Cargo.lock')}"

python secret_vm_cargo_vendor_git() {
    import shutil

    wanted = {}
    for crate, value in (d.getVarFlags("SECRET_VM_CARGO_GIT") or {}).items():
        words = (value or "").split()
        if len(words) != 2:
            bb.fatal('SECRET_VM_CARGO_GIT[%s] is "%s", expected "<repository URL> <directory under WORKDIR>"'
                     % (crate, value))
        wanted[crate] = (words[0], os.path.join(d.getVar("WORKDIR"), words[1]))

    lock = d.getVar("SECRET_VM_CARGO_LOCK")
    original = lock + ".orig"
    if not os.path.exists(original) and not os.path.exists(lock):
        bb.fatal("%s does not exist: --frozen builds need the project's Cargo.lock" % lock)
    with open(original if os.path.exists(original) else lock) as f:
        lines = f.readlines()

    # One [[package]] at a time: its name line comes before its source line.
    kept, name, used, unnamed = [], None, set(), []
    for line in lines:
        if line.startswith("[[package]]"):
            name = None
        elif line.startswith("name = "):
            name = line.split('"')[1]
        elif line.startswith('source = "git+'):
            repo = line.split('"')[1][len("git+"):].split("?")[0].split("#")[0]
            if name in wanted and wanted[name][0] == repo:
                used.add(name)
                continue
            unnamed.append("%s (%s)" % (name, repo))
        kept.append(line)
    if unnamed:
        bb.fatal("%s takes crates from git that SECRET_VM_CARGO_GIT does not name: %s"
                 % (lock, ", ".join(unnamed)))
    unused = sorted(set(wanted) - used)
    if unused:
        bb.fatal("SECRET_VM_CARGO_GIT names crates %s does not take from those repositories: %s"
                 % (lock, ", ".join(unused)))
    if not wanted:
        return
    for crate in sorted(wanted):
        if not os.path.isfile(os.path.join(wanted[crate][1], "Cargo.toml")):
            bb.fatal("SECRET_VM_CARGO_GIT[%s]: no Cargo.toml in %s (is it in SRC_URI, with that destsuffix?)"
                     % (crate, wanted[crate][1]))
    if not os.path.exists(original):
        shutil.copy(lock, original)
    with open(lock, "w") as f:
        f.writelines(kept)

    by_repo = {}
    for crate in sorted(wanted):
        by_repo.setdefault(wanted[crate][0], []).append(crate)
    with open(os.path.join(d.getVar("CARGO_HOME"), "config.toml"), "a") as f:
        for repo in sorted(by_repo):
            f.write('\n[patch."%s"]\n' % repo)
            for crate in by_repo[repo]:
                f.write('%s = { path = "%s" }\n' % (crate, wanted[crate][1]))
}

do_configure[postfuncs] += "secret_vm_cargo_vendor_config secret_vm_cargo_vendor_git"
