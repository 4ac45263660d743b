# Sourced by the scripts that train several runs: `train COMMAND NAME ARGS...` runs
# `$bin COMMAND ARGS... --name NAME` (COMMAND: fit, distill or qat), or resumes checkpoints/NAME
# where it was stopped.
train() {
  local command=$1 name=$2
  shift 2
  if [ -e "checkpoints/$name/latest" ]; then
    "$bin" "$command" --resume "checkpoints/$name"
  else
    "$bin" "$command" "$@" --name "$name"
  fi
}
