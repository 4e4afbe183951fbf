# bash language features whose output must match the host's bash (also bookworm's) line for line.
words=(pear "apple pie" fig apple)
echo "count=${#words[@]} second=${words[1]} last=${words[-1]} slice=${words[*]:1:2}"
words+=(kiwi)
for i in "${!words[@]}"; do printf '%d:%s;' "$i" "${words[$i]}"; done; echo
declare -A colour=([sky]=blue [grass]=green)
for k in $(printf '%s\n' "${!colour[@]}" | sort); do echo "$k=${colour[$k]}"; done
printf '%s\n' "${words[@]}" | sort | uniq | tr a-z A-Z | paste -sd,
cat <<EOF2 | while read -r a b; do echo "[$b|$a]"; done
one $((6 * 7))
two $(echo nested | rev)
EOF2
cat <<'EOF3'
quoted $HOME `not run`
EOF3
read -r first rest <<< "here string words"
echo "$first/$rest"
echo "sum $(( $(seq 1 100 | paste -sd+) ))"
(exit 3); echo "status $?"; false | true; echo "pipestatus ${PIPESTATUS[*]}"
set -o pipefail; false | true; echo "pipefail $?"
