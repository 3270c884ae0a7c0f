#!/usr/bin/env bash
# The OpenAPI fuzz run: schemathesis reads /admin/api/openapi.json from a running authledger,
# generates requests from it (valid ones and deliberately invalid ones), sends them with an
# admin bearer token and checks every answer against the document.
#
#   tests/clients/openapi_fuzz.sh BASE_URL ADMIN_TOKEN
#
# One worker: CPython 3.11's ast module is not safe to use from two threads at once
# ("AST constructor recursion depth mismatch", seen here), and hypothesis parses with it.
#
# Checks: no 5xx; only documented statuses, content types and body shapes; input the
# document rules out is refused (4xx); operations that declare security refuse a caller
# without credentials. Seeded, bounded in examples and time, so a run is repeatable and ends.
set -euo pipefail
base=${1:?usage: openapi_fuzz.sh BASE_URL ADMIN_TOKEN}
token=${2:?usage: openapi_fuzz.sh BASE_URL ADMIN_TOKEN}

# schemathesis keeps a directory of its own where it runs: not in the repository.
cd "$(mktemp -d)"
exec python3 -m schemathesis.cli run "$base/admin/api/openapi.json" \
  --url "$base" \
  --header "Authorization: Bearer $token" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,negative_data_rejection,ignored_auth \
  --phases examples,coverage,fuzzing \
  --max-examples "${FUZZ_EXAMPLES:-25}" \
  --seed 20261127 \
  --workers 1 \
  --request-timeout 10 \
  --max-time "${FUZZ_SECONDS:-100}" \
  --no-color
