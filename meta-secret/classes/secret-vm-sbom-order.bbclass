# Reproducible image SBOMs. poky's image SBOM task (do_create_image_sbom_spdx) picks which of
# several equal licence elements to keep, and numbers the CreationInfo blank nodes, in the order
# of the objects' memory addresses, so two builds of the same image give two different SBOMs.
# lib/secretvm/sbomorder.py makes both follow the SBOM's contents; this class installs it in
# the task's process before the task runs. The distro inherits it (conf/distro/secret-vm.conf).

python secret_vm_sbom_order() {
    import oe.sbom30
    import oe.spdx30
    import secretvm.sbomorder
    secretvm.sbomorder.install(oe.spdx30, oe.sbom30)
}

do_create_image_sbom_spdx[prefuncs] += "secret_vm_sbom_order"
# The library is part of what the task runs: a change to it reruns the task.
do_create_image_sbom_spdx[file-checksums] += "${SECRET_VM_LAYERDIR}/lib/secretvm/sbomorder.py:True"
