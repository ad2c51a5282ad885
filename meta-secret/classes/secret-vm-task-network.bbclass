# Only fetch and shared-state tasks may have the network.
#
# bitbake-worker runs every task whose [network] flag is unset in a network namespace of its own
# that has only a loopback interface (bb.utils.disable_network). A recipe or class that sets the
# flag on one of its build tasks takes its task out of that cut: meta-oe's etcd and influxdb do
# it for do_compile, so that Go can download modules; poky's icecc class does it for
# do_configure, do_compile, do_compile_kernelmodules and do_install, so that the compiler can
# send work to other hosts.
# Such a task can then download, or take compiled code from elsewhere, past SRC_URI and its
# checksums, and nothing in the build's output would show it whenever the run has the network: a
# native build, `--online`, or a container build whose build run reaches team caches.
#
# This class refuses those recipes. A recipe with such a task is skipped, and the reason names
# the task, so a build that needs it stops before any task runs, with "Nothing PROVIDES" (or
# RPROVIDES) "'<recipe>'" and "<recipe> was skipped: <the reason>"; a build that does not need
# it is not affected. The fix is to put what the task downloads into SRC_URI (vendored modules,
# crates, wheels), as the recipes of this layer do. The distro inherits the class
# (conf/distro/secret-vm.conf).
#
# Left with the network:
# - do_fetch and do_checkuri, which fetch SRC_URI, every file checked against its checksum and
#   every git source against its commit;
# - the shared-state tasks (SSTATETASKS) and their _setscene variants, to which sstate.bbclass
#   gives the network itself, to reach sstate mirrors and the hash-equivalence server; a build
#   run in `--network=none` is what keeps those from downloading (see the project's README);
# - tasks a user starts by hand and whose output is no artifact: do_devshell, do_pydevshell,
#   do_testimage, do_testsdk, do_testsdkext;
# - tasks marked noexec, which run nothing.

SECRET_VM_NETWORK_TASKS = "do_fetch do_checkuri do_devshell do_pydevshell do_testimage do_testsdk do_testsdkext"

addhandler secret_vm_task_network
secret_vm_task_network[eventmask] = "bb.event.RecipeTaskPreProcess"
python secret_vm_task_network() {
    # Fired after the recipe's anonymous functions (where classes such as icecc and sstate set
    # the flag) with the recipe's final task list.
    allowed = set((d.getVar("SECRET_VM_NETWORK_TASKS") or "").split())
    for task in (d.getVar("SSTATETASKS") or "").split():
        allowed.add(task)
        allowed.add(task + "_setscene")
    asking = sorted(
        task for task in e.tasklist
        if task not in allowed
        and bb.utils.to_boolean(d.getVarFlag(task, "network"))
        and not bb.utils.to_boolean(d.getVarFlag(task, "noexec"))
    )
    if asking:
        raise bb.parse.SkipRecipe(
            "%s ask%s for the network ([network] = \"1\"), which the secret-vm distro gives only "
            "to do_fetch and shared-state tasks: put what %s download%s into SRC_URI "
            "(meta-secret/classes/secret-vm-task-network.bbclass)"
            % (" and ".join(asking), "" if len(asking) > 1 else "s",
               "they" if len(asking) > 1 else "it", "" if len(asking) > 1 else "s"))
}
