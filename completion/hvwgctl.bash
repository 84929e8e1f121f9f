# bash completion for hvwgctl: commands, options and their values, and image/machine/job names
# from the daemon (on the bus given on the line).
#
# Bash splits COMP_WORDS at '=' and ':', which tears "--bus-address=unix:path=/run/x" apart;
# the words are read from COMP_LINE instead, split at blanks only, and the candidates are
# trimmed to the part after the last '=' or ':' (what readline replaces).

_hvwgctl_names() {
    # $1: images | machines | jobs; $2…: the bus options of the command line
    local what=$1
    shift
    case $what in
        images|machines|jobs) hvwgctl "$@" --no-legend "$what" 2>/dev/null | awk '{print $1}' ;;
        subscriptions) hvwgctl "$@" --no-legend subscriptions 2>/dev/null | awk '$1 ~ /^[0-9a-f]{16}$/ {print $1}' ;;
    esac
}

_hvwgctl() {
    local line=${COMP_LINE:0:COMP_POINT} words cur
    read -ra words <<< "$line"
    if [[ $line == *[[:blank:]] || ${#words[@]} -eq 0 ]]; then
        cur=""
    else
        cur=${words[-1]}
        unset 'words[-1]'
    fi
    local commands="status fetch images inspect rm create machines show start stop reboot destroy console wait jobs cancel watch subscribe subscriptions unsubscribe refresh list-images"
    local global="--system --bus-address= --json --json= --bytes --no-legend --quiet --no-wait --verbose --help --version"
    local cmd="" bus=() w
    for w in "${words[@]:1}"; do
        case $w in
            --bus-address=*|--system) bus+=("$w") ;;
            -*) ;;
            *) [[ -z $cmd ]] && cmd=$w ;;
        esac
    done
    local cands=""
    case $cur in
        --json=*)       cands="--json=short --json=pretty" ;;
        --hypervisor=*) cands="--hypervisor=kvm --hypervisor=qemu --hypervisor=xen --hypervisor=xen-pv" ;;
        --scratch-fs=*) cands="--scratch-fs=ext4 --scratch-fs=ext3 --scratch-fs=ext2" ;;
        --state=*)      cands="--state=running --state=shut-off --state=paused --state=crashed --state=undefined --state=removed" ;;
        --bus-address=*) cands="--bus-address=unix:path=" ;;
        -*)
            cands=$global
            case $cmd in
                fetch)   cands+=" --sha512= --size= --max-size= --replace --raw" ;;
                create)  cands+=" --cores= --memory= --scratch= --scratch-fs= --hypervisor= --network= --transient --no-start" ;;
                stop)    cands+=" --timeout= --force" ;;
                destroy) cands+=" --keep-disks" ;;
                console) cands+=" --follow -f" ;;
                wait)    cands+=" --state= --timeout=" ;;
                subscribe) cands+=" --endorser-dn= --ca-dn= --auto-fetch --refresh= --name-prefix=" ;;
                unsubscribe) cands+=" --remove-images" ;;
                inspect) cands+=" --lint" ;;
            esac ;;
        *)
            if [[ -z $cmd ]]; then
                cands=$commands
            else
                case $cmd in
                    inspect|rm|create) cands=$(_hvwgctl_names images "${bus[@]}") ;;
                    show|start|stop|reboot|destroy|console) cands=$(_hvwgctl_names machines "${bus[@]}") ;;
                    cancel) cands=$(_hvwgctl_names jobs "${bus[@]}") ;;
                    wait) cands="$(_hvwgctl_names jobs "${bus[@]}") $(_hvwgctl_names machines "${bus[@]}")" ;;
                    unsubscribe|refresh|list-images) cands=$(_hvwgctl_names subscriptions "${bus[@]}") ;;
                esac
            fi ;;
    esac
    COMPREPLY=($(compgen -W "$cands" -- "$cur"))
    [[ ${#COMPREPLY[@]} -eq 1 && ${COMPREPLY[0]} == *= ]] && compopt -o nospace 2>/dev/null
    # readline replaces only what follows the last '=' or ':' of the word
    if [[ $cur == *[=:]* ]]; then
        local pre=${cur%"${cur##*[=:]}"}
        COMPREPLY=("${COMPREPLY[@]#"$pre"}")
    fi
}
complete -F _hvwgctl hvwgctl
