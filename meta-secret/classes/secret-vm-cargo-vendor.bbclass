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
# (run once with the network, then commit the file). Dependencies fetched from git rather than
# crates.io are not in that file; such a recipe must add them to SRC_URI itself.

inherit cargo-update-recipe-crates

# Where bitbake's crate fetcher unpacks crate:// sources (bb.fetch2.crate, one directory per
# crate with a .cargo-checksum.json): WORKDIR/cargo_home/bitbake, fixed by the fetcher.
SECRET_VM_CARGO_VENDOR_DIR = "${WORKDIR}/cargo_home/bitbake"

# --frozen is --locked plus --offline: a Cargo.lock that disagrees with Cargo.toml, or a crate
# that is not vendored, stops the build instead of being resolved from the network.
EXTRA_CARGO_FLAGS:append = " --frozen"

# Written after cargo_bin's configure, into the CARGO_HOME cargo_bin exports.
secret_vm_cargo_vendor_config() {
    if [ ! -d "${SECRET_VM_CARGO_VENDOR_DIR}" ]; then
        bbfatal "no vendored crates in ${SECRET_VM_CARGO_VENDOR_DIR}: does the recipe require ${BPN}-crates.inc (bitbake -c update_crates ${PN})?"
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
do_configure[postfuncs] += "secret_vm_cargo_vendor_config"
