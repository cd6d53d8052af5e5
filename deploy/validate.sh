#!/usr/bin/env bash
# deploy/validate.sh: check the operations files without a cluster or a Docker
# engine. Idempotent; exits non-zero when any check fails; prints what it checked.
#
#   1. go test ./dashboards/   Grafana JSON and rule YAML parse; every metric name
#                              they use is exported by iacc; every alert has a
#                              runbook and unit tests; every YAML/JSON under
#                              deploy/ parses; compose topology; k8s base shape
#   2. promtool                check rules, test rules (alerts_test.yml), check
#                              config (deploy/compose/prometheus/prometheus.yml)
#   3. nginx -t                deploy/nginx/iacc.conf with a throwaway self-signed
#                              certificate, then a smoke run on loopback ports
#   4. kustomize build         deploy/k8s/overlays/production
#   5. compose config          deploy/compose/compose.yaml with the example env files
#   6. go build                the image's build command (CGO_ENABLED=0 -trimpath),
#                              the binary must be static
#   7. runbook commands        every `iacc …` line of docs/runbooks answers --help
#                              (a warning unless STRICT_RUNBOOK_COMMANDS=1)
#
# Missing tools are installed with apt-get when running as root on Debian/Ubuntu
# (prometheus for promtool, nginx, docker-compose), with service starts blocked
# during the install; set VALIDATE_NO_INSTALL=1 to only use what is there.
# kustomize: `kubectl kustomize`, else `kustomize`, else `go run` of kustomize v5.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2
GO=${GO:-go}
KUSTOMIZE_VERSION=${KUSTOMIZE_VERSION:-v5.5.0}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/iacc-validate.XXXXXX")
NGINX_PID=""
UPSTREAM_PID=""
cleanup() {
	if [ -n "$NGINX_PID" ]; then kill "$NGINX_PID" 2>/dev/null; fi
	if [ -n "$UPSTREAM_PID" ]; then kill "$UPSTREAM_PID" 2>/dev/null; fi
	wait 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT

passed=0
failed=0
skipped=0
failures=()
ok() { passed=$((passed + 1)); printf 'ok    %s\n' "$1"; }
fail() { failed=$((failed + 1)); failures+=("$1"); printf 'FAIL  %s\n' "$1"; }
skip() { skipped=$((skipped + 1)); printf 'skip  %s\n' "$1"; }
indent() { sed 's/^/      /'; }

# run NAME CMD...: run a check, show its output indented when it fails.
run() {
	local name=$1
	shift
	local out
	if out=$("$@" 2>&1); then
		ok "$name"
	else
		fail "$name"
		printf '%s\n' "$out" | tail -40 | indent
	fi
}

APT_UPDATED=""
can_install() {
	[ -z "${VALIDATE_NO_INSTALL:-}" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null
}
apt_install() {
	can_install || return 1
	if [ -z "$APT_UPDATED" ]; then
		apt-get update -qq >"$TMP/apt-update.log" 2>&1 || { cat "$TMP/apt-update.log"; return 1; }
		APT_UPDATED=1
	fi
	# Packaged daemons (prometheus, nginx) must not start on this machine:
	# policy-rc.d refuses service starts during the install.
	local policy=/usr/sbin/policy-rc.d placed=""
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && placed=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >"$TMP/apt-install.log" 2>&1
	local rc=$?
	if [ -n "$placed" ]; then rm -f "$policy"; fi
	[ $rc = 0 ] || tail -20 "$TMP/apt-install.log"
	return $rc
}
need() { # need CMD PACKAGE
	command -v "$1" >/dev/null && return 0
	echo "      installing $2 for $1 (apt-get)"
	apt_install "$2" && command -v "$1" >/dev/null
}

echo "iacc deploy validation ($ROOT)"

# 1. Go tests of the ops files ---------------------------------------------
run "go test ./dashboards/ (metric names, runbooks, alert unit-test coverage, YAML/JSON parse, compose and k8s shape)" \
	"$GO" test -count=1 ./dashboards/

# 2. promtool ----------------------------------------------------------------
if need promtool prometheus; then
	run "promtool check rules dashboards/prometheus/alerts.yml" promtool check rules dashboards/prometheus/alerts.yml
	run "promtool test rules dashboards/prometheus/alerts_test.yml" promtool test rules dashboards/prometheus/alerts_test.yml
	# prometheus.yml names in-container paths: check a copy pointing at real files.
	mkdir -p "$TMP/prom/rules"
	cp dashboards/prometheus/alerts.yml "$TMP/prom/rules/iacc-alerts.yml"
	printf 'token' >"$TMP/prom/metrics_token"
	sed -e "s#/etc/prometheus/rules#$TMP/prom/rules#" -e "s#/etc/prometheus/metrics_token#$TMP/prom/metrics_token#" \
		deploy/compose/prometheus/prometheus.yml >"$TMP/prom/prometheus.yml"
	run "promtool check config deploy/compose/prometheus/prometheus.yml (with the rules it loads)" promtool check config "$TMP/prom/prometheus.yml"
else
	fail "promtool not found (apt-get install prometheus)"
fi

# 3. nginx -------------------------------------------------------------------
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
if need nginx nginx && need openssl openssl; then
	N="$TMP/nginx"
	mkdir -p "$N/tls" "$N/logs" "$N/conf" "$N/www"
	chmod 755 "$TMP" "$N"
	openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=iacc.test \
		-keyout "$N/tls/tls.key" -out "$N/tls/tls.crt" >/dev/null 2>&1
	# nginx resolves upstream host names when it loads the configuration: the
	# scratch copy points the upstream at loopback instead of the compose
	# service name "api"; everything else is the file as shipped.
	UP_PORT=$(free_port)
	sed -e "s#server api:8080#server 127.0.0.1:$UP_PORT#" \
		-e "s#/etc/nginx/tls/#$N/tls/#g" -e "s#/var/log/nginx/#$N/logs/#g" -e "s#/var/www/acme#$N/www#g" \
		deploy/nginx/iacc.conf >"$N/conf/iacc.conf"
	cat >"$N/conf/nginx.conf" <<EOF
pid $N/nginx.pid;
error_log $N/logs/error.log;
events {}
http {
    access_log $N/logs/access.log;
    include $N/conf/iacc.conf;
}
EOF
	run "nginx -t deploy/nginx/iacc.conf (self-signed test certificate, upstream on loopback)" \
		nginx -t -q -p "$N" -c "$N/conf/nginx.conf"

	# Smoke run: the same configuration on free loopback ports (IPv4 only),
	# in front of a stub API that sets its own security headers as iacc does.
	if command -v curl >/dev/null && command -v python3 >/dev/null; then
		HTTP_PORT=$(free_port)
		HTTPS_PORT=$(free_port)
		sed -e "/listen \[::\]/d" -e "s#listen 80 #listen 127.0.0.1:$HTTP_PORT #" -e "s#listen 443 #listen 127.0.0.1:$HTTPS_PORT #" \
			"$N/conf/iacc.conf" >"$N/conf/iacc-smoke.conf"
		sed -e "s#$N/conf/iacc.conf#$N/conf/iacc-smoke.conf#" "$N/conf/nginx.conf" >"$N/conf/nginx-smoke.conf"
		cat >"$N/upstream.py" <<'EOF'
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    def _answer(self):
        body = b'{"status":"ok"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Strict-Transport-Security", "max-age=1")
        self.send_header("X-Frame-Options", "DENY")
        if self.path == "/docs":
            self.send_header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
        else:
            self.send_header("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
        self.send_header("X-Seen-Request-ID", self.headers.get("X-Request-ID", ""))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_POST = _answer
    def log_message(self, *a): pass
HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF
		python3 "$N/upstream.py" "$UP_PORT" &
		UPSTREAM_PID=$!
		nginx -p "$N" -c "$N/conf/nginx-smoke.conf" -g 'daemon off;' 2>"$N/logs/start.log" &
		NGINX_PID=$!
		# Wait (5 s at most) until the stub answers through nginx.
		for _ in $(seq 50); do
			[ "$(curl -sk -o /dev/null -w '%{http_code}' "https://127.0.0.1:$HTTPS_PORT/health")" = 200 ] && break
			sleep 0.1
		done
		B="https://127.0.0.1:$HTTPS_PORT"
		smoke() {
			local h
			h=$(curl -sk -D - -o /dev/null "$B/health") || { echo "no answer from nginx"; cat "$N/logs/start.log" "$N/logs/error.log" 2>/dev/null; return 1; }
			grep -qi '^HTTP/[0-9.]* 200' <<<"$h" || { echo "/health: $h"; return 1; }
			[ "$(grep -ci '^strict-transport-security:' <<<"$h")" = 1 ] || { echo "/health: want exactly one HSTS header: $h"; return 1; }
			grep -qi '^strict-transport-security: max-age=63072000; includeSubDomains' <<<"$h" || { echo "/health: nginx's HSTS must win: $h"; return 1; }
			for hd in 'x-content-type-options: nosniff' 'x-frame-options: DENY' 'referrer-policy: no-referrer' \
				"content-security-policy: default-src 'none'; frame-ancestors 'none'"; do
				grep -qi "^$hd" <<<"$h" || { echo "/health: missing $hd"; return 1; }
			done
			grep -qi '^x-seen-request-id: .' <<<"$h" || { echo "/health: no X-Request-ID sent upstream"; return 1; }
			h=$(curl -sk -D - -o /dev/null "$B/docs")
			grep -qi "^content-security-policy: default-src 'none'; style-src 'unsafe-inline'" <<<"$h" || { echo "/docs: the API's CSP must be kept: $h"; return 1; }
			[ "$(curl -sk -o /dev/null -w '%{http_code}' "$B/metrics")" = 404 ] || { echo "/metrics must be 404"; return 1; }
			h=$(curl -sk -D - -o /dev/null "$B/metrics")
			grep -qi '^strict-transport-security:' <<<"$h" || { echo "/metrics 404 without security headers"; return 1; }
			[ "$(curl -sk -o /dev/null -w '%{http_code}' "$B/ready")" = 200 ] || { echo "/ready from loopback must pass"; return 1; }
			[ "$(curl -sk -o /dev/null -w '%{http_code}' "$B/api/vendors")" = 200 ] || { echo "/api/vendors not proxied"; return 1; }
			[ "$(curl -sk -o /dev/null -w '%{http_code}' "$B/monitoring-readonly/")" = 200 ] || { echo "/monitoring-readonly not proxied"; return 1; }
			[ "$(head -c 1100000 /dev/zero | curl -sk -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data-binary @- "$B/api/purchase-orders")" = 413 ] ||
				{ echo "a 1.1 MB body must get 413"; return 1; }
			local loc
			loc=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "http://127.0.0.1:$HTTP_PORT/api/vendors?page=2")
			[[ "$loc" == "301 https://127.0.0.1/api/vendors?page=2" ]] || { echo "http must redirect to https: $loc"; return 1; }
			# The login rate limit: 30/min with a burst of 10 -> some of 25 quick calls get 429.
			local codes
			codes=$(for _ in $(seq 25); do curl -sk -o /dev/null -w '%{http_code}\n' -X POST "$B/auth/login"; done | sort | uniq -c | tr '\n' ' ')
			grep -q ' 429' <<<"$codes" || { echo "/auth/ rate limit did not answer 429: $codes"; return 1; }
		}
		run "nginx smoke run: TLS, one set of security headers, API CSP kept, /metrics 404, /ready internal, 413 over 1 MiB, http->https, /auth 429" smoke
		kill "$NGINX_PID" "$UPSTREAM_PID" 2>/dev/null
		wait "$NGINX_PID" "$UPSTREAM_PID" 2>/dev/null
		NGINX_PID=""
		UPSTREAM_PID=""
	else
		skip "nginx smoke run (needs curl and python3)"
	fi
else
	fail "nginx not found (apt-get install nginx)"
fi

# 4. kustomize ---------------------------------------------------------------
kustomize_build() {
	if command -v kubectl >/dev/null && kubectl kustomize --help >/dev/null 2>&1; then
		kubectl kustomize "$1"
	elif command -v kustomize >/dev/null; then
		kustomize build "$1"
	else
		"$GO" run "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION" build "$1"
	fi
}
check_k8s() {
	local out=$TMP/k8s-production.yaml
	kustomize_build deploy/k8s/overlays/production >"$out" || return 1
	local kinds
	kinds=$(grep '^kind:' "$out" | sort | uniq -c | tr -s ' ' | tr '\n' ',')
	echo "      built: $kinds" >&3
	for k in Namespace ConfigMap Deployment StatefulSet Service PodDisruptionBudget HorizontalPodAutoscaler ScaledObject Job Ingress NetworkPolicy ServiceMonitor; do
		grep -q "^kind: $k\$" "$out" || { echo "no $k in the production build"; return 1; }
	done
	[ "$(grep -c '^kind: Deployment$' "$out")" = 3 ] || { echo "want 3 Deployments (api, worker, scheduler)"; return 1; }
	! grep -q '^kind: Secret$' "$out" || { echo "the build must not carry Secrets (create them out of band)"; return 1; }
	grep -q 'namespace: iacc$' "$out" || { echo "production objects must be in namespace iacc"; return 1; }
	grep -q 'image: ghcr.io/iacc/iacc:' "$out" || { echo "image not set"; return 1; }
}
exec 3>&1
run "kustomize build deploy/k8s/overlays/production" check_k8s

# 5. docker compose config ---------------------------------------------------
compose_cmd=()
if docker compose version >/dev/null 2>&1; then
	compose_cmd=(docker compose)
elif command -v docker-compose >/dev/null || need docker-compose docker-compose; then
	compose_cmd=(docker-compose)
fi
if [ ${#compose_cmd[@]} -gt 0 ]; then
	run "${compose_cmd[*]} config -q deploy/compose/compose.yaml (with .env.example and iacc.env.example)" \
		env IACC_ENV_FILE=iacc.env.example "${compose_cmd[@]}" -f deploy/compose/compose.yaml \
		--env-file deploy/compose/.env.example config -q
else
	skip "compose config (no docker compose / docker-compose client; the compose topology is still checked by go test)"
fi

# 6. the image's build command ------------------------------------------------
static_build() {
	CGO_ENABLED=0 "$GO" build -buildvcs=false -trimpath -ldflags "-s -w -X main.version=validate" -o "$TMP/iacc" ./cmd/iacc || return 1
	if command -v ldd >/dev/null && ldd "$TMP/iacc" 2>&1 | grep -q '=>'; then
		echo "binary is dynamically linked"
		return 1
	fi
	"$TMP/iacc" --version
}
run "CGO_ENABLED=0 go build -trimpath ./cmd/iacc (static binary, as deploy/Dockerfile builds it)" static_build
skip "docker build deploy/Dockerfile (no Docker engine here; the build command above is the Dockerfile's)"

# 7. runbook commands ----------------------------------------------------------
runbook_commands() {
	[ -x "$TMP/iacc" ] || { echo "no binary (build failed)"; return 1; }
	local bad=0 n=0 line
	while IFS= read -r line; do
		n=$((n + 1))
		# shellcheck disable=SC2086 # split the command line into words on purpose
		if ! IACC_ENV=local "$TMP/iacc" ${line#iacc } --help >/dev/null 2>&1; then
			echo "not known yet: $line"
			bad=$((bad + 1))
		fi
	done < <(awk '/^```/{inblock=!inblock; next} inblock && /^iacc /{print}' docs/runbooks/*.md | sort -u)
	echo "$n distinct iacc command lines, $bad unknown" >&3
	[ $bad = 0 ]
}
if [ -n "${STRICT_RUNBOOK_COMMANDS:-}" ]; then
	run "runbook iacc commands answer --help" runbook_commands
elif out=$(runbook_commands 2>&1); then
	ok "runbook iacc commands answer --help"
else
	skip "runbook iacc commands (some not in this binary yet; STRICT_RUNBOOK_COMMANDS=1 makes this fail):"
	printf '%s\n' "$out" | indent
fi

# Lint this script when shellcheck is installed.
if command -v shellcheck >/dev/null; then
	run "shellcheck deploy/validate.sh" shellcheck deploy/validate.sh
fi

echo
if [ $failed -gt 0 ]; then
	printf 'failed: %s\n' "${failures[@]}"
fi
echo "deploy validation: $passed passed, $failed failed, $skipped skipped"
[ $failed = 0 ]
