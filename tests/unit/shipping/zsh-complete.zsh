# Driven by test-zsh-completion: runs an interactive zsh -f in a pseudo
# terminal (zsh/zpty) with the completions of DIR on its fpath, types each
# case's line followed by TAB, and prints for each case the command line
# after completion ("buffer: ...") and the listing the completion showed
# ("listing: ...", escape sequences removed). Usage:
#   zsh -f zsh-complete.zsh DIR TMPDIR LINE...
# Waits for conditions (a file the shell writes), each with a deadline.
zmodload zsh/zpty || exit 1
emulate -L zsh
setopt extendedglob

dir=$1 tmp=$2
shift 2

# read_until FILE: drain the terminal's output into $out until FILE exists
# (or 60 s pass), then once more for what came with it.
read_until() {
  local chunk deadline=$(( SECONDS + 60 ))
  while [[ ! -e $1 ]] && (( SECONDS < deadline )); do
    zpty -r -t z chunk && out+=$chunk || sleep 0.05
  done
  sleep 0.05
  while zpty -r -t z chunk; do out+=$chunk; done
  [[ -e $1 ]]
}

zpty z 'zsh -f -i' || exit 1
# ^X^D writes the command line to the file named by $dumpfile: zle runs it
# after the TAB typed before it, so the file appears once completion is done.
zpty -w z "PS1='> '; PS2=''; unsetopt beep; fpath=(${(q)dir} \$fpath)
autoload -Uz compinit && compinit -u -D
zstyle ':completion:*' menu no
zstyle ':completion:*' list-packed false
dump-buffer() { print -r -- \"\$BUFFER\" >| \$dumpfile; }
zle -N dump-buffer; bindkey '^X^D' dump-buffer
print -r -- setup >| ${(q)tmp}/setup"
out=
read_until $tmp/setup || { print "setup: no prompt in time: $out"; exit 1 }

integer n=0
for line in "$@"; do
  (( n++ ))
  out=
  zpty -w z "dumpfile=${(q)tmp}/case$n"
  zpty -w -n z "$line"$'\t\C-x\C-d'
  if ! read_until $tmp/case$n; then
    print "case $n ($line): no answer in time; terminal: ${(V)out}"
    exit 1
  fi
  print -r -- "buffer: $(<$tmp/case$n)"
  # Listing text: no escape sequences, carriage returns or the typed line.
  print -r -- "listing: ${${out//$'\e'\[[0-9;?]#[A-Za-z]/}//$'\r'/}" | tr '\n' ' '
  print
  zpty -w -n z $'\C-u'
done
zpty -w z 'exit'
zpty -d z
