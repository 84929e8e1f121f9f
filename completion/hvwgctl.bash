# bash completion for hvwgctl: commands, options, and image/machine/job names from the daemon.
_hvwgctl_names() {
    # $1: images | machines | jobs; uses the same bus options as the command line
    local bus=() w
    for w in "${COMP_WORDS[@]}"; do
        case $w in --bus-address=*|--system) bus+=("$w") ;; esac
    done
    case $1 in
        images)   hvwgctl "${bus[@]}" --quiet images 2>/dev/null | awk '{print $1}' ;;
        machines) hvwgctl "${bus[@]}" --quiet machines 2>/dev/null | awk '{print $1}' ;;
        jobs)     hvwgctl "${bus[@]}" --quiet jobs 2>/dev/null | awk '{print $1}' ;;
    esac
}

_hvwgctl() {
    local cur=${COMP_WORDS[COMP_CWORD]}
    local commands="status fetch images inspect rm create machines destroy jobs cancel watch"
    local global="--system --bus-address= --json --bytes --quiet --no-wait --verbose --help --version"
    local cmd="" i
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            -*) ;;
            *) cmd=${COMP_WORDS[i]}; break ;;
        esac
    done
    if [[ $cur == -* ]]; then
        local opts=$global
        case $cmd in
            fetch)   opts+=" --sha512= --size= --max-size= --replace --raw" ;;
            create)  opts+=" --cores= --memory= --scratch= --scratch-fs= --hypervisor= --network= --no-start" ;;
            destroy) opts+=" --keep-disks" ;;
        esac
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        [[ ${COMPREPLY[0]} == *= ]] && compopt -o nospace 2>/dev/null
        return
    fi
    if [[ -z $cmd ]]; then
        COMPREPLY=($(compgen -W "$commands" -- "$cur"))
        return
    fi
    case $cmd in
        inspect|rm) COMPREPLY=($(compgen -W "$(_hvwgctl_names images)" -- "$cur")) ;;
        create)     COMPREPLY=($(compgen -W "$(_hvwgctl_names images)" -- "$cur")) ;;
        destroy)    COMPREPLY=($(compgen -W "$(_hvwgctl_names machines)" -- "$cur")) ;;
        cancel)     COMPREPLY=($(compgen -W "$(_hvwgctl_names jobs)" -- "$cur")) ;;
    esac
}
complete -F _hvwgctl hvwgctl
