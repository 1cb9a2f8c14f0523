#!/usr/bin/env zsh
# complete-zsh.zsh DIR LINE: loads the completion function _alumia-connect from DIR into an interactive
# zsh (on a pseudo-terminal of zsh's own zpty module, after compinit), types LINE and a Tab, and prints
# each match the completion system offered, one a line: `match<TAB>description`. Exit 0 once the
# completion ran (also when it offered nothing), 2 when the shell could not be driven.
emulate -L zsh
zmodload zsh/zpty || { print -u2 'complete-zsh: zsh/zpty is missing'; exit 2 }
local dir=$1 line=$2
local work=$(mktemp -d) || exit 2
: > $work/matches
cat > $work/.zshrc <<RC
exec 2>>${(q)work}/errors
stty columns 1000 2>/dev/null
PROMPT='' RPROMPT=''
unsetopt beep
fpath=(${(q)dir} \$fpath)
autoload -Uz compinit && compinit -u -D
zstyle ':completion:*' list-grouped false
zstyle ':completion:*' insert-tab false
bindkey '^I' complete-word
# Every match a completion function adds (through _describe, _files, ...) goes to the matches file
# with its description; compadd itself still runs, so matching against the typed prefix is zsh's.
compadd() {
  if [[ \${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then
    builtin compadd "\$@"
    return
  fi
  local -a __hits __dscr
  if (( \$@[(I)-d] )); then
    local __d=\${@[\$[\${@[(i)-d]}+1]]}
    if [[ \$__d == \(* ]]; then eval "__dscr=\$__d"; else __dscr=( "\${(@P)__d}" ); fi
  fi
  builtin compadd -A __hits -D __dscr "\$@"
  local i
  for i in {1..\$#__hits}; do
    print -r -- "\$__hits[\$i]"\$'\t'"\${\${\${__dscr[\$i]}##\$__hits[\$i] #}#-- }" >> ${(q)work}/matches
  done
}
__complete_zsh_done() { : > ${(q)work}/done; exit }
comppostfuncs=(__complete_zsh_done)
RC
export ZDOTDIR=$work
if ! zpty z zsh -i; then
  rm -rf -- $work
  exit 2
fi
zpty -w -n z "$line"$'\t'
local out i
# The shell exits once the completion has run; poll for that, at most 20 s.
for i in {1..400}; do
  [[ -e $work/done ]] && break
  zpty -r -t z out 2>/dev/null || sleep 0.05
done
zpty -d z
local rc=0
if [[ -e $work/done ]]; then
  cat $work/matches
else
  print -u2 -r -- "complete-zsh: the completion did not run for: $line"
  cat $work/errors >&2 2>/dev/null
  rc=2
fi
rm -rf -- $work
exit $rc
