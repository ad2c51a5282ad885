# shellcheck shell=sh
# TDX measurement, shared by init-tdx and init-gcp-tdx (installed as /lib/secret-vm-tdx.sh).

# Records the workload in the TD's runtime measurements. Arguments: the sha256 of
# docker-compose.yaml, of the OS image (the rootfs ISO or root partition), and of
# docker-files.tar or "" when there is none.
#
# With KMS contract (the default): RTMR3 is extended, in this order, with the compose hash, the
# image hash and the docker-files hash. `attest-tool extendrt 3 <hex>` takes the 32-byte sha256
# and zero-pads it to the 48 bytes of an RTMR, so RTMR3 = SHA384 chain over those padded values.
# With KMS dstack or gramine: dstack-util records events app-id, compose-hash, os-image-hash and
# docker-files-hash, the order dstack's verifiers replay.
measure_workload_tdx() {
    compose=$1
    image=$2
    files=$3
    kms=$(kms_of_config) || die "$CONFIG_DIR/secret-vm.json is not valid JSON"
    say "KMS=$kms"
    case $kms in
        dstack | gramine)
            app_id=$(jq -r '.dstack_app_id // ""' "$CONFIG_DIR/secret-vm.json") \
                || die "cannot read .dstack_app_id from $CONFIG_DIR/secret-vm.json"
            # The app id is measured; a VM without one must not boot (`secretvm measure rtmr3
            # --config-dir` refuses such a config too).
            [ -n "$app_id" ] || die "KMS=$kms needs .dstack_app_id in $CONFIG_DIR/secret-vm.json"
            must dstack-util extend --event app-id --payload "$app_id"
            must dstack-util extend --event compose-hash --payload "$compose"
            must dstack-util extend --event os-image-hash --payload "$image"
            if [ -n "$files" ]; then
                must dstack-util extend --event docker-files-hash --payload "$files"
            fi
            ;;
        *)
            must attest-tool extendrt 3 "$compose"
            must attest-tool extendrt 3 "$image"
            if [ -n "$files" ]; then
                must attest-tool extendrt 3 "$files"
            fi
            ;;
    esac
    # The report is for the console log only; the measurements above are what counts.
    attest-tool report || say "warning: attest-tool report failed (the measurements are recorded)"
}
