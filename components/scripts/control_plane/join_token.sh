#!/usr/bin/env bash
# kubehop step "join-token": publish what a new worker needs to `kubeadm join`
# in SSM Parameter Store, where its boot script (node_pool/user_data.sh) reads
# it: /kubehop/<cluster>/api-endpoint (String, host:port of the API server),
# /kubehop/<cluster>/ca-cert-hash (String, sha256:<hex> of the cluster CA's
# public key) and /kubehop/<cluster>/join-token (SecureString, a kubeadm
# bootstrap token made here with the TTL below). Runs on the first master
# before the node pools roll. The token never appears in a command line: it is
# handed to `aws ssm put-parameter` in a 0600 file that is removed on exit.
#
# Run as root with this text on stdin: `sudo env K=V ... bash -s`.
# Every input is an environment variable:
#   KUBEHOP_NODE        required  node name, e.g. master0 (the node this runs on)
#   KUBEHOP_CLUSTER     required  cluster name, the <cluster> of /kubehop/<cluster>/..., e.g. prod-b
#   KUBEHOP_REGION      required  AWS region of the parameters, e.g. eu-west-1
#   KUBEHOP_TOKEN_TTL   optional  bootstrap token lifetime, a kubeadm duration of at
#                                 least 1h (6h, 90m, 1h30m); default 6h. A token is
#                                 re-used while half of this is left, so a rollout
#                                 must finish within half of it.
#   KUBEHOP_TOKEN_MARGIN optional a duration (30m, 1h): check only, change nothing. Fails
#                                 unless the published token is listed by kubeadm with at
#                                 least this much left (the check after the rollouts that
#                                 proves the renewal timer, join_token_timer.sh, keeps it).
#   KUBEHOP_KUBECONFIG  optional  default /etc/kubernetes/admin.conf
#   KUBEHOP_ROOT        optional  prefix for /etc and /var paths (tests); default empty
# The node's instance profile needs ssm:GetParameter and ssm:PutParameter on
# arn:aws:ssm:<region>:<account>:parameter/kubehop/<cluster>/* (the default
# aws/ssm KMS key encrypts the token); the AWS CLI must be installed.
# Already done when /kubehop/<cluster>/join-token holds a token that `kubeadm
# token list` shows with at least half of KUBEHOP_TOKEN_TTL left, and the
# endpoint and CA hash parameters hold the current values.
# Exit: 0 done or already done; 1 failed (reason on stderr); 2 bad input.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
if ! declare -F kubehop_lib_loaded >/dev/null; then source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"; fi

STEP=join-token

one_line() { # the last command's stderr on one line, for a message
  local text
  text=$(tr -s '\n\t' '  ' <"$WORK/err")
  text=${text# }
  printf '%s' "${text% }"
}

# ssm_get NAME: sets GOT to the parameter's (decrypted) value, or to nothing when it does not exist.
ssm_get() {
  GOT=$(timeout 60 aws ssm get-parameter --region "$REGION" --name "$1" --with-decryption \
    --query Parameter.Value --output text 2>"$WORK/err") && return 0
  GOT=""
  grep -q ParameterNotFound "$WORK/err" && return 0
  fail "cannot read SSM parameter $1 in $REGION: $(one_line); the instance profile of $KUBEHOP_NODE needs ssm:GetParameter on arn:aws:ssm:$REGION:<account>:parameter$PREFIX/* (check also the region and the network path to SSM); nothing was changed"
}

put_failed() { # NAME WHAT-WAS-LEFT
  fail "aws ssm put-parameter $1 failed: $(one_line); the instance profile of $KUBEHOP_NODE needs ssm:PutParameter on arn:aws:ssm:$REGION:<account>:parameter$PREFIX/* (and the aws/ssm KMS key for the SecureString token); $2; grant it and re-run pulumi up"
}

# ssm_put_string NAME VALUE: writes a String parameter (values that are not secret).
ssm_put_string() {
  timeout 60 aws ssm put-parameter --region "$REGION" --name "$1" --type String --overwrite \
    --value "$2" >/dev/null 2>"$WORK/err" || put_failed "$1" "new nodes cannot join until it is written"
  say "wrote $1 = $2"
}

# token_left: sets LEFT to the seconds the token in TOKEN has left per `kubeadm token list`
# (-1: not listed or expired; empty: it never expires).
token_left() {
  local listing line tok="" expires="" found=0 now when
  listing=$(timeout 60 kubeadm token list --kubeconfig "$KCFG" -o json 2>"$WORK/err") \
    || fail "kubeadm token list failed: $(one_line); check the API server and $KCFG; nothing was changed"
  while IFS= read -r line; do
    if [[ $line =~ ^\{ ]]; then
      tok="" expires=""
    elif [[ $line =~ ^[[:space:]]*\"token\":[[:space:]]*\"([^\"]*)\" ]]; then
      tok=${BASH_REMATCH[1]}
    elif [[ $line =~ ^[[:space:]]*\"expires\":[[:space:]]*\"([^\"]*)\" ]]; then
      expires=${BASH_REMATCH[1]}
    elif [[ $line =~ ^\} && -n $tok && $tok == "$TOKEN" ]]; then
      found=1
      break
    fi
  done <<<"$listing"
  LEFT=-1 EXPIRES=$expires
  ((found)) || return 0
  if [[ -z $expires ]]; then
    LEFT=""
    return 0
  fi
  now=$(date +%s)
  when=$(date -d "$expires" +%s 2>/dev/null) || return 0
  LEFT=$((when > now ? when - now : -1))
}

# check_margin SECONDS: the published token has at least that long left; changes nothing.
check_margin() {
  local token_param=$PREFIX/join-token
  ssm_get "$token_param"
  TOKEN=$GOT
  [[ -n $TOKEN ]] || fail "$token_param does not exist: new workers cannot join; run pulumi up again (its join-token step publishes one) and check $UNIT_HINT"
  LEFT=-1 EXPIRES=""
  token_left
  [[ $LEFT != -1 ]] || fail "the token in $token_param is expired or gone from the cluster: new workers cannot join; check $UNIT_HINT, then run pulumi up again"
  if [[ -n $LEFT ]] && ((LEFT < $1)); then
    fail "the token in $token_param has only ${LEFT}s left (expires $EXPIRES), less than the margin of ${1}s: the renewal is not keeping up; check $UNIT_HINT, then run pulumi up again"
  fi
  say "done: the token in $token_param has ${LEFT:-unlimited }${LEFT:+s} left, at least the margin of ${1}s"
}

main() {
  validate_node
  validate_join_inputs
  local ttl=${KUBEHOP_TOKEN_TTL:-6h} ttl_s=$TTL_SECONDS
  validate_root
  use_kubeconfig
  REGION=$KUBEHOP_REGION PREFIX=/kubehop/$KUBEHOP_CLUSTER
  local ca=$ROOT/etc/kubernetes/pki/ca.crt hash server endpoint token_param=$PREFIX/join-token tool

  for tool in aws openssl; do
    command -v "$tool" >/dev/null || fail "$tool is not installed on $KUBEHOP_NODE; install it (Ubuntu: apt-get install ${tool/aws/awscli}) and re-run pulumi up; nothing was changed"
  done
  umask 077
  WORK=$(mktemp -d)
  trap 'rm -rf "$WORK"' EXIT
  if [[ -n ${KUBEHOP_TOKEN_MARGIN:-} ]]; then
    local margin
    margin=$(ttl_seconds "$KUBEHOP_TOKEN_MARGIN") || bad "KUBEHOP_TOKEN_MARGIN must be a duration such as 30m or 1h (got '$KUBEHOP_TOKEN_MARGIN')"
    STEP=join-token-margin UNIT_HINT="'systemctl status kubehop-join-token.timer kubehop-join-token.service' on $KUBEHOP_NODE"
    check_margin "$margin"
    return 0
  fi

  # What a joining node checks the API server against: the CA's public key (kubeadm's discovery hash).
  [[ -r $ca ]] || fail "cannot read $ca, the cluster CA; this is not a kubeadm control-plane node (check the SSH target of $KUBEHOP_NODE); nothing was changed"
  hash=$({ openssl x509 -pubkey -noout -in "$ca" | openssl pkey -pubin -outform der | openssl dgst -sha256 -hex; } \
    2>"$WORK/err") || fail "cannot hash the public key of $ca: $(one_line); check that it is a PEM certificate; nothing was changed"
  hash=sha256:${hash##* }
  [[ $hash =~ ^sha256:[0-9a-f]{64}$ ]] || fail "openssl printed no SHA-256 digest for $ca (got '$hash'); check the openssl installation; nothing was changed"

  server=$(timeout 60 kubectl --kubeconfig "$KCFG" config view --minify -o 'jsonpath={.clusters[0].cluster.server}' 2>"$WORK/err") \
    || fail "cannot read the API server address from $KCFG: $(one_line); check KUBEHOP_KUBECONFIG; nothing was changed"
  endpoint=${server#https://}
  endpoint=${endpoint%/}
  [[ $endpoint =~ ^[^/[:space:]\"]+$ && $server == https://* ]] || fail "the server of $KCFG is '$server', not https://<host>[:port]; fix $KCFG; nothing was changed"
  [[ $endpoint =~ :[0-9]+$ ]] || endpoint=$endpoint:443

  ssm_get "$PREFIX/api-endpoint"
  local have_endpoint=$GOT
  ssm_get "$PREFIX/ca-cert-hash"
  local have_hash=$GOT
  ssm_get "$token_param"
  TOKEN=$GOT
  LEFT=-1 EXPIRES=""
  [[ -z $TOKEN ]] || token_left

  local fresh=0 left_text
  if [[ -n $TOKEN ]] && [[ -z $LEFT || $((LEFT * 2)) -ge $ttl_s ]]; then
    fresh=1
    left_text=${EXPIRES:+expires $EXPIRES, more than half of $ttl left}
    left_text=${left_text:-never expires}
  fi
  if ((fresh)) && [[ $have_endpoint == "$endpoint" && $have_hash == "$hash" ]]; then
    say "already done (the token in $token_param $left_text; $PREFIX/api-endpoint and ca-cert-hash are current), skipping"
    return 0
  fi
  # Endpoint and hash first: a token is made only once this node can write the parameters.
  [[ $have_endpoint == "$endpoint" ]] || ssm_put_string "$PREFIX/api-endpoint" "$endpoint"
  [[ $have_hash == "$hash" ]] || ssm_put_string "$PREFIX/ca-cert-hash" "$hash"
  if ((fresh)); then
    say "done: the token in $token_param is kept (it $left_text)"
    return 0
  fi
  if [[ -z $TOKEN ]]; then
    say "$token_param does not exist yet; creating a bootstrap token (ttl $ttl)"
  elif ((LEFT < 0)); then
    say "the token in $token_param is expired or gone from the cluster; creating a new one (ttl $ttl)"
  else
    say "the token in $token_param has only ${LEFT}s left, less than half of $ttl; creating a new one (the old one stays valid until $EXPIRES)"
  fi

  local token id
  token=$(timeout 60 kubeadm token create --kubeconfig "$KCFG" --ttl "$ttl" --description "kubehop node rollout" 2>"$WORK/err") \
    || fail "kubeadm token create failed: $(one_line); check the API server and $KCFG; $token_param was not changed"
  [[ $token =~ ^[a-z0-9]{6}\.[a-z0-9]{16}$ ]] \
    || fail "kubeadm token create printed no bootstrap token (expected [a-z0-9]{6}.[a-z0-9]{16}); check the kubeadm version; $token_param was not changed"
  id=${token%%.*}
  # The token goes to aws only through this 0600 file (umask 077, in a 0700 directory).
  printf '{"Value": "%s"}\n' "$token" >"$WORK/put.json"
  if ! timeout 60 aws ssm put-parameter --region "$REGION" --name "$token_param" --type SecureString --overwrite \
    --cli-input-json "file://$WORK/put.json" >/dev/null 2>"$WORK/err"; then
    rm -f "$WORK/put.json"
    timeout 60 kubeadm token delete --kubeconfig "$KCFG" "$id" >/dev/null 2>&1 || true
    put_failed "$token_param" "the new bootstrap token $id was deleted again and the old value of $token_param is unchanged"
  fi
  rm -f "$WORK/put.json"
  say "done: bootstrap token $id (ttl $ttl) written to $token_param as a SecureString"
}

# Everything runs from main with stdin closed: this text arrives on stdin
# (`bash -s`), so no command may read the rest of it, and a truncated
# transfer never reaches this line.
main "$@" </dev/null
