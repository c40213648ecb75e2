# bench-lib.sh - what lab/guest-bench.sh and lab/guest-profile.sh share (INSIDE the VM).
# point_args SPEC: a NAME=SCENARIO[,FLAG=VALUE...] load point as "SCENARIO --FLAG VALUE ...".
point_args() { # SPEC -> prints "SCENARIO FLAG VALUE ..."
  local spec=$1 rest scenario kv
  rest=${spec#*=}; [[ $spec == *=* ]] || rest=$spec
  IFS=, read -r scenario kv <<<"$rest"
  printf '%s' "$scenario"
  local IFS=,
  for kv in ${rest#"$scenario"}; do
    [[ -n $kv ]] && printf ' --%s %s' "${kv%%=*}" "${kv#*=}"
  done
  echo
}
