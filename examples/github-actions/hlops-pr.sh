#!/usr/bin/env bash
# hlops in pull requests, the shell behind examples/github-actions/hlops.yml.
#
#   hlops-pr.sh plan    on a pull request: plan, and create or update the PR's plan comment(s)
#   hlops-pr.sh apply   on the default branch after a merge: plan again, and apply only if it is
#                       the plan reviewed in the merged PR (same plan id); otherwise refuse, and
#                       post the new plan on the PR for review
#
# The plan comment: `hlops plan --markdown-dir` writes one markdown part per comment (each
# under 65,000 characters); every part starts with the marker `<!-- hlops-plan -->` and
# carries the plan id and the commit it was made at. The comments of an earlier run are
# edited in place (oldest first), extra ones deleted, missing ones created: one comment per
# part, never a new pile per push.
#
# Why the plan id is enough to trust an apply: the id is a hash of every change, of the remote
# version of every resource touched and of each data file's fingerprint (not of the URL or the
# hlops version). `hlops apply plan.json` then re-plans once more and refuses (StalePlanError)
# if anything moved in between. So what runs is what a reviewer saw, or nothing.
#
# Environment:
#   GITHUB_REPOSITORY, GITHUB_TOKEN     set by GitHub Actions (the token: pull-requests: write)
#   GITHUB_API_URL                      set by GitHub Actions (tests point it at a stub)
#   HLOPS_BASE_URL, HLOPS_API_KEY       the Humanloop API (the key from a repository secret)
#   HLOPS_DIR                           the manifest tree (default: .)
#   HLOPS                               how to run hlops (default: hlops)
#   HLOPS_OUT                           where plan.json, the markdown and logs go (default: hlops-out)
#   plan:  PR_NUMBER, PR_HEAD_SHA       the pull request and its head commit
#   apply: GITHUB_SHA                   the merge commit on the default branch
#          HLOPS_APPROVED_PLAN_ID       (optional, manual runs) apply this plan id, reviewed in a
#                                       refusal comment, instead of the one of the merged PR
#          HLOPS_DATA_LOSS_LABEL        the PR label that allows data loss (default: hlops:allow-data-loss)
#
# Exit: 0 planned / applied / nothing to do; 1 error or refusal. Never prints the tokens.

set -euo pipefail

: "${GITHUB_REPOSITORY:?set GITHUB_REPOSITORY (owner/name)}"
: "${GITHUB_TOKEN:?set GITHUB_TOKEN}"
API=${GITHUB_API_URL:-https://api.github.com}
DIR=${HLOPS_DIR:-.}
OUT=${HLOPS_OUT:-hlops-out}
read -r -a HLOPS_CMD <<<"${HLOPS:-hlops}"
MARKER='<!-- hlops-plan -->'
DIR_TAG="<!-- hlops-dir: ${DIR} -->"
LOSS_LABEL=${HLOPS_DATA_LOSS_LABEL:-hlops:allow-data-loss}

log() { printf 'hlops-pr: %s\n' "$*" >&2; }

# gh_api METHOD PATH [JSON_FILE] -> the response body on stdout; fails on HTTP errors.
gh_api() {
  local method=$1 path=$2 body=${3:-}
  local args=(-sS --fail-with-body --retry 3 -X "$method"
    -H "Authorization: Bearer ${GITHUB_TOKEN}"
    -H "Accept: application/vnd.github+json"
    -H "X-GitHub-Api-Version: 2022-11-28")
  if [[ -n $body ]]; then
    args+=(-H "Content-Type: application/json" --data-binary "@${body}")
  fi
  curl "${args[@]}" "${API}${path}"
}

# The ids of this tree's plan comments on PR $1, oldest first.
plan_comments() {
  local pr=$1 page=1 chunk
  while :; do
    chunk=$(gh_api GET "/repos/${GITHUB_REPOSITORY}/issues/${pr}/comments?per_page=100&page=${page}")
    jq -r --arg m "$MARKER" --arg d "$DIR_TAG" \
      '.[] | select((.body | startswith($m)) and (.body | contains($d))) | .id' <<<"$chunk"
    [[ $(jq length <<<"$chunk") -lt 100 ]] && break
    page=$((page + 1))
  done
}

# The bodies of this tree's plan comments on PR $1, as one JSON array.
plan_comment_bodies() {
  local pr=$1 page=1 chunk all='[]'
  while :; do
    chunk=$(gh_api GET "/repos/${GITHUB_REPOSITORY}/issues/${pr}/comments?per_page=100&page=${page}")
    all=$(jq -c --arg m "$MARKER" --arg d "$DIR_TAG" --argjson all "$all" \
      '$all + [.[] | select((.body | startswith($m)) and (.body | contains($d))) | .body]' <<<"$chunk")
    [[ $(jq length <<<"$chunk") -lt 100 ]] && break
    page=$((page + 1))
  done
  printf '%s\n' "$all"
}

# post_comment PR FILE -> a new comment with the file's text.
post_comment() {
  jq -Rs '{body: .}' <"$2" >"$OUT/body.json"
  gh_api POST "/repos/${GITHUB_REPOSITORY}/issues/$1/comments" "$OUT/body.json" >/dev/null
}

# sync_comments PR PART... -> the PR's plan comments become exactly these parts.
sync_comments() {
  local pr=$1
  shift
  local -a existing
  mapfile -t existing < <(plan_comments "$pr")
  local i=0 part
  for part in "$@"; do
    jq -Rs '{body: .}' <"$part" >"$OUT/body.json"
    if ((i < ${#existing[@]})); then
      gh_api PATCH "/repos/${GITHUB_REPOSITORY}/issues/comments/${existing[i]}" "$OUT/body.json" >/dev/null
      log "updated comment ${existing[i]} (part $((i + 1)) of $#)"
    else
      gh_api POST "/repos/${GITHUB_REPOSITORY}/issues/${pr}/comments" "$OUT/body.json" >/dev/null
      log "created a comment (part $((i + 1)) of $#)"
    fi
    i=$((i + 1))
  done
  while ((i < ${#existing[@]})); do
    gh_api DELETE "/repos/${GITHUB_REPOSITORY}/issues/comments/${existing[i]}" >/dev/null
    log "deleted comment ${existing[i]} (a part no longer needed)"
    i=$((i + 1))
  done
}

# The markdown parts written by `hlops plan --markdown-dir`, in order (plan-1.md, plan-2.md ...).
parts_in() {
  local n=1
  while [[ -f "$1/plan-${n}.md" ]]; do
    printf '%s\n' "$1/plan-${n}.md"
    n=$((n + 1))
  done
}

# tag_parts SHA PART... -> each part gets this tree's tag and the commit, after the marker line.
tag_parts() {
  local sha=$1 part
  shift
  for part in "$@"; do
    { head -n 1 "$part"; printf '%s\n<!-- hlops-sha: %s -->\n' "$DIR_TAG" "$sha"; tail -n +2 "$part"; } >"$part.tmp"
    mv "$part.tmp" "$part"
  done
}

# run_plan TITLE -> runs hlops plan into $OUT; sets PLAN_CODE (0 no changes, 2 changes, 1 error).
run_plan() {
  rm -rf "$OUT/md"
  mkdir -p "$OUT"
  set +e
  "${HLOPS_CMD[@]}" plan "$DIR" -o "$OUT/plan.json" --markdown-dir "$OUT/md" --title "$1" --no-color \
    >"$OUT/plan.txt" 2>"$OUT/plan.err"
  PLAN_CODE=$?
  set -e
  cat "$OUT/plan.txt"
  cat "$OUT/plan.err" >&2
}

# error_part TITLE -> a comment part saying hlops failed, with the end of its error output.
error_part() {
  mkdir -p "$OUT/md"
  {
    printf '%s\n### %s: failed\n\n`hlops plan` exited with an error:\n\n```text\n' "$MARKER" "$1"
    tail -c 20000 "$OUT/plan.err"
    printf '\n```\n'
  } >"$OUT/md/plan-1.md"
}

cmd_plan() {
  : "${PR_NUMBER:?set PR_NUMBER}"
  local sha=${PR_HEAD_SHA:-${GITHUB_SHA:-unknown}}
  local title="hlops plan: ${DIR}"
  run_plan "$title"
  if [[ $PLAN_CODE != 0 && $PLAN_CODE != 2 ]]; then
    error_part "$title"
  fi
  local -a parts
  mapfile -t parts < <(parts_in "$OUT/md")
  tag_parts "$sha" "${parts[@]}"
  sync_comments "$PR_NUMBER" "${parts[@]}"
  if [[ $PLAN_CODE != 0 && $PLAN_CODE != 2 ]]; then
    log "hlops plan failed (exit $PLAN_CODE)"
    return 1
  fi
  log "plan $(jq -r .plan_id "$OUT/plan.json") commented on #${PR_NUMBER} (${#parts[@]} part(s))"
}

cmd_apply() {
  : "${GITHUB_SHA:?set GITHUB_SHA}"
  run_plan "hlops plan: ${DIR} (on ${GITHUB_SHA:0:7})"
  if [[ $PLAN_CODE == 0 ]]; then
    log "no changes to apply"
    return 0
  fi
  if [[ $PLAN_CODE != 2 ]]; then
    log "hlops plan failed (exit $PLAN_CODE)"
    return 1
  fi
  local plan_id pr reviewed_id="" reviewed_sha="" head_sha="" labels="[]"
  plan_id=$(jq -r .plan_id "$OUT/plan.json")
  pr=$(gh_api GET "/repos/${GITHUB_REPOSITORY}/commits/${GITHUB_SHA}/pulls" |
    jq -r '[.[] | select(.merged_at != null)][0].number // empty')
  if [[ -n $pr ]]; then
    local pull bodies
    pull=$(gh_api GET "/repos/${GITHUB_REPOSITORY}/pulls/${pr}")
    head_sha=$(jq -r .head.sha <<<"$pull")
    labels=$(jq -c '[.labels[]?.name]' <<<"$pull")
    bodies=$(plan_comment_bodies "$pr")
    reviewed_id=$(jq -r '[.[] | capture("<!-- hlops-plan-id: (?<id>[0-9a-f]+) -->").id][0] // empty' <<<"$bodies")
    reviewed_sha=$(jq -r '[.[] | capture("<!-- hlops-sha: (?<sha>[^ ]+) -->").sha][0] // empty' <<<"$bodies")
  fi

  local approved=${HLOPS_APPROVED_PLAN_ID:-}
  local reason=""
  if [[ -n $approved ]]; then
    [[ $approved == "$plan_id" ]] || reason="the plan on this commit is ${plan_id}, not the approved plan ${approved}"
  elif [[ -z $pr ]]; then
    reason="commit ${GITHUB_SHA:0:7} is not the merge of a pull request, so no one reviewed its plan"
  elif [[ -z $reviewed_id ]]; then
    reason="pull request #${pr} has no hlops plan comment for ${DIR}"
  elif [[ $reviewed_sha != "$head_sha" ]]; then
    reason="the plan comment on #${pr} was made at ${reviewed_sha:0:7}, not at the head of the pull request (${head_sha:0:7})"
  elif [[ $reviewed_id != "$plan_id" ]]; then
    reason="the plan on ${GITHUB_SHA:0:7} (${plan_id}) is not the plan reviewed on #${pr} (${reviewed_id}): the remote or the default branch changed since"
  fi
  if [[ -n $reason ]]; then
    log "refusing to apply: $reason"
    if [[ -n $pr ]]; then
      local -a parts
      mapfile -t parts < <(parts_in "$OUT/md")
      {
        printf '<!-- hlops-apply -->\n### ⛔ hlops apply refused for `%s`\n\n%s.\n\n' "$DIR" "$reason"
        printf 'Nothing was applied. The plan below (id `%s`) is what applying now would do; to apply it after review, run the hlops workflow by hand with `plan_id: %s`.\n\n' "$plan_id" "$plan_id"
        if ((${#parts[@]} == 1)); then tail -n +2 "${parts[0]}"; else printf '(%d parts: see the workflow artifact)\n' "${#parts[@]}"; fi
      } >"$OUT/refused.md"
      post_comment "$pr" "$OUT/refused.md"
    fi
    return 1
  fi

  local -a flags=(--auto-approve --no-color)
  if [[ $(jq -r .summary.data_loss "$OUT/plan.json") != 0 ]] && jq -e --arg l "$LOSS_LABEL" 'index($l)' <<<"$labels" >/dev/null; then
    flags+=(--allow-data-loss)
    log "data loss allowed by the label ${LOSS_LABEL}"
  fi
  set +e
  "${HLOPS_CMD[@]}" apply "$OUT/plan.json" "${flags[@]}" >"$OUT/apply.txt" 2>&1
  local code=$?
  set -e
  cat "$OUT/apply.txt"
  if [[ -n $pr ]]; then
    local verdict="✅ hlops applied plan \`${plan_id}\` for \`${DIR}\`"
    [[ $code == 0 ]] || verdict="❌ hlops apply of plan \`${plan_id}\` for \`${DIR}\` failed (exit ${code})"
    {
      printf '<!-- hlops-apply -->\n### %s\n\nAt %s.\n\n<details><summary>Output</summary>\n\n```text\n' "$verdict" "${GITHUB_SHA:0:7}"
      tail -c 50000 "$OUT/apply.txt"
      printf '\n```\n\n</details>\n'
    } >"$OUT/applied.md"
    post_comment "$pr" "$OUT/applied.md"
  fi
  return "$code"
}

case ${1:-} in
  plan) cmd_plan ;;
  apply) cmd_apply ;;
  *)
    echo "usage: $0 plan|apply" >&2
    exit 1
    ;;
esac
