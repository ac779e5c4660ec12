# What zsh's TAB offers for a command line, printed one candidate a line.
#   zsh -f tests/completion/zsh-capture.zsh DIR 'gpu-setup plan --str'
# DIR holds the _gpu-setup completion function. zsh completes only inside
# its line editor, so this runs an interactive zsh on a pty (zsh/zpty),
# types the line and a TAB, and has compadd print what it would offer.
# Adapted from zsh-capture-completion by Valodim
# (https://github.com/Valodim/zsh-capture-completion, MIT licence): the
# candidates carry a marker so that the echoed line and prompt codes are
# never taken for one.
zmodload zsh/zpty
zpty z zsh -f -i
local line
setopt rcquotes
() {
    zpty -w z source $1
    repeat 4; do
        zpty -r z line
        [[ $line == ok* ]] && return
    done
    echo 'error initializing.' >&2
    exit 2
} =( <<< "fpath=($1 \$fpath)"'
PROMPT=
autoload compinit
compinit -u -D
bindkey ''^M'' undefined
bindkey ''^J'' undefined
bindkey ''^I'' complete-word
null-line () { echo -E - $''\0'' }
compprefuncs=( null-line )
comppostfuncs=( null-line exit )
zstyle '':completion:*'' list-grouped false
zstyle '':completion:*'' list-packed false
zstyle '':completion:*'' list-rows-first true
zstyle '':completion:*'' list-separator ''''
zstyle '':completion:*'' menu false
zmodload zsh/zutil
compadd () {
    if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then
        builtin compadd "$@"
        return $?
    fi
    typeset -a __hits __dscr __tmp
    builtin compadd -A __hits -D __dscr "$@"
    setopt localoptions norcexpandparam extendedglob
    [[ -n $__hits ]] || return
    for i in {1..$#__hits}; do
        echo -E - "<<M>>$__hits[$i]"
    done
}
echo ok')
zpty -w z "$2"$'\t'
integer tog=0
while zpty -r z; do :; done | while IFS= read -r line; do
    if [[ $line == *$'\0\r' ]]; then
        (( tog++ )) && exit 0 || continue
    fi
    [[ $line == *"<<M>>"* ]] && echo -E - ${${line##*<<M>>}%$'\r'}
done
exit 2
