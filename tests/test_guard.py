"""The pre-tool guard (issue 10, item 2): a tool call is denied only when it may CHANGE a resource
another live session holds; reads pass.

The table below is judged twice: by the pure function `clambake.resource_hits()` (every row), and a
sample through the real hook (`hook pre-tool` fed Claude Code's documented PreToolUse JSON) against
the real Postgres the suite starts, with another session holding the resource.  Windows simulations
(a cp1252 console, backslash paths, case-insensitive paths) are at the end.
"""

import json
import os
import sys
import uuid
from collections import Counter

import pytest

import clambake

DENY, PASS = True, False
CWD = "/home/dev/shop"
WIN_CWD = "F:\\Docker\\clambake"

# (resource claimed by another session, tool, command or file path, expected, cwd)
TABLE = [
    # --- a name: docker ---------------------------------------------------------------------------
    ("docker", "Bash", "docker ps", PASS, CWD),
    ("docker", "Bash", "docker ps -a --filter status=exited", PASS, CWD),
    ("docker", "Bash", "docker compose logs api", PASS, CWD),
    ("docker", "Bash", "docker compose -f docker-compose.prod.yml logs -f --tail 50 api", PASS, CWD),
    ("docker", "Bash", "docker compose ps", PASS, CWD),
    ("docker", "Bash", "docker compose config", PASS, CWD),
    ("docker", "Bash", "docker logs --since 10m web", PASS, CWD),
    ("docker", "Bash", "docker inspect web | jq '.[0].State'", PASS, CWD),
    ("docker", "Bash", "docker images", PASS, CWD),
    ("docker", "Bash", "docker --context prod image ls", PASS, CWD),
    ("docker", "Bash", "git log -- docker/", PASS, CWD),
    ("docker", "Bash", "git log --oneline -5 -- docker/Dockerfile", PASS, CWD),
    ("docker", "Bash", "git show HEAD:docker/Dockerfile", PASS, CWD),
    ("docker", "Bash", "git diff docker/", PASS, CWD),
    ("docker", "Bash", "git status", PASS, CWD),
    ("docker", "Bash", "git blame docker/entrypoint.sh", PASS, CWD),
    ("docker", "Bash", "git grep docker", PASS, CWD),
    ("docker", "Bash", "grep -r docker README.md", PASS, CWD),
    ("docker", "Bash", "rg -n 'docker compose' docs/", PASS, CWD),
    ("docker", "Bash", "cat docker-compose.yml", PASS, CWD),
    ("docker", "Bash", "less docker/Dockerfile", PASS, CWD),
    ("docker", "Bash", "head -20 docker-compose.yml && tail -5 docker-compose.yml", PASS, CWD),
    ("docker", "Bash", "wc -l docker-compose.yml", PASS, CWD),
    ("docker", "Bash", "echo docker", PASS, CWD),
    ("docker", "Bash", "echo 'docker compose down'", PASS, CWD),
    ("docker", "Bash", "which docker", PASS, CWD),
    ("docker", "Bash", "command -v docker", PASS, CWD),
    ("docker", "Bash", "systemctl status docker", PASS, CWD),
    ("docker", "Bash", "journalctl -u docker --since today", PASS, CWD),
    ("docker", "Bash", "ps aux | grep docker", PASS, CWD),
    ("docker", "Bash", "python clambake.py check docker", PASS, CWD),
    ("docker", "Bash", "python /opt/clambake/clambake.py wait --resource docker --timeout 110s", PASS, CWD),
    ("docker", "Bash", "cat > notes.txt <<'EOF'\ndocker compose down\nsystemctl restart docker\nEOF", PASS, CWD),
    ("docker", "Bash", "grep -c docker $(git ls-files)", PASS, CWD),
    ("docker", "Bash", "git commit -m 'docker: pin the base image'", PASS, CWD),
    ("docker", "Bash", "cp docker-compose.yml backup/", PASS, CWD),
    ("docker", "Bash", "python -m pytest tests/test_docker_images.py", PASS, CWD),
    ("docker", "Bash", "docker compose down", DENY, CWD),
    ("docker", "Bash", "docker restart x", DENY, CWD),
    ("docker", "Bash", "systemctl restart docker", DENY, CWD),
    ("docker", "Bash", "sudo systemctl restart docker.service", DENY, CWD),
    ("docker", "Bash", "sudo -u root service docker stop", DENY, CWD),
    ("docker", "Bash", "docker-compose up -d", DENY, CWD),
    ("docker", "Bash", "cd app && DOCKER_BUILDKIT=1 docker build -t api .", DENY, CWD),
    ("docker", "Bash", "docker compose up -d --build api", DENY, CWD),
    ("docker", "Bash", "docker system prune -af", DENY, CWD),
    ("docker", "Bash", "python clambake.py check docker; docker compose down", DENY, CWD),
    ("docker", "Bash", "python clambake.py check docker && docker compose restart", DENY, CWD),
    ("docker", "Bash", "docker ps | grep old && docker rm -f old", DENY, CWD),
    ("docker", "Bash", "bash -c \"docker compose down\"", DENY, CWD),
    ("docker", "Bash", "sh -c 'cd /srv && docker compose pull'", DENY, CWD),
    ("docker", "Bash", "echo $(docker restart web)", DENY, CWD),
    ("docker", "Bash", "echo `docker stop web`", DENY, CWD),
    ("docker", "Bash", "(cd infra; docker compose down)", DENY, CWD),
    ("docker", "Bash", "timeout 60 nice -n 5 docker build .", DENY, CWD),
    ("docker", "Bash", "env COMPOSE_PROFILES=dev docker compose up", DENY, CWD),
    ("docker", "Bash", "pkill -f dockerd", DENY, CWD),
    ("docker", "Bash", "killall docker", DENY, CWD),
    ("docker", "Bash", "./deploy.sh docker", DENY, CWD),
    ("docker", "Bash", "make docker", DENY, CWD),
    ("docker", "Bash", "npm run docker:up", DENY, CWD),
    ("docker", "Bash", "pip install docker", PASS, CWD),
    ("docker", "Bash", "gh pr create --title 'Fix docker restart' --label docker", PASS, CWD),
    ("docker", "Bash", "python -c 'import yaml; print(yaml.safe_load(open(\"docker/app.yml\")))'", PASS, CWD),
    ("docker", "Bash", "ssh build-01 'sudo systemctl restart docker'", DENY, CWD),
    ("docker", "Bash", "uv run clambake send --type blocker --resource docker --subject x", PASS, CWD),
    ("docker", "Bash", "watch -n 5 docker ps", PASS, CWD),
    ("docker", "Bash", "docker ps -q | xargs docker stop", DENY, CWD),
    ("docker", "Bash", "/usr/bin/docker kill web", DENY, CWD),
    ("docker", "Bash", "sudo rm -rf /var/lib/docker", DENY, CWD),
    ("docker", "Bash", "echo '{\"debug\": true}' | sudo tee /etc/docker/daemon.json", DENY, CWD),
    ("docker", "Bash", "cat /etc/docker/daemon.json", PASS, CWD),
    ("docker", "Bash", "echo 'docker compose down' | bash", DENY, CWD),
    ("docker", "Bash", "net stop com.docker.service", DENY, WIN_CWD),
    ("docker", "Edit", "C:\\ProgramData\\Docker\\config\\daemon.json", DENY, WIN_CWD),
    ("docker", "Monitor", "docker compose logs -f api", PASS, CWD),
    ("docker", "Monitor", "docker compose up api", DENY, CWD),
    ("docker", "PowerShell", "docker ps", PASS, WIN_CWD),
    ("docker", "PowerShell", "Get-Content docker-compose.yml | Select-String image", PASS, WIN_CWD),
    ("docker", "PowerShell", "Get-Service docker", PASS, WIN_CWD),
    ("docker", "PowerShell", "Restart-Service docker", DENY, WIN_CWD),
    ("docker", "PowerShell", "Get-Process docker* | Stop-Process -Force", DENY, WIN_CWD),
    ("docker", "Bash", "pkill -f 'docker.*'", DENY, CWD),
    ("docker", "PowerShell", "Get-Process dockerd | Stop-Process -Force", DENY, WIN_CWD),
    ("docker", "PowerShell", "Get-Process dockerd | Format-Table", PASS, WIN_CWD),
    ("docker", "PowerShell", "Stop-Process -Name dockerd -Force", DENY, WIN_CWD),
    ("docker", "PowerShell", "& \"C:\\Program Files\\Docker\\Docker\\resources\\bin\\docker.exe\" compose down",
     DENY, WIN_CWD),
    ("docker", "PowerShell", "cd F:\\Docker\\clambake; docker compose restart", DENY, WIN_CWD),
    ("docker", "Bash", "powershell -Command \"Restart-Service docker\"", DENY, WIN_CWD),
    ("docker", "Write", "/home/dev/shop/docker/Dockerfile", PASS, CWD),
    ("docker", "Edit", "/home/dev/shop/docker-compose.yml", PASS, CWD),
    # --- a service name: api ----------------------------------------------------------------------
    ("api", "Bash", "docker compose logs api", PASS, CWD),
    ("api", "Bash", "docker compose ps api", PASS, CWD),
    ("api", "Bash", "curl -s localhost:8000/api/health", PASS, CWD),
    ("api", "Bash", "docker compose restart api", DENY, CWD),
    ("api", "Bash", "docker compose up -d --no-deps api", DENY, CWD),
    ("api", "Bash", "kubectl get pods -l app=api", PASS, CWD),
    ("api", "Bash", "kubectl rollout restart deployment/api", DENY, CWD),
    ("postgres", "Bash", "docker compose logs postgres", PASS, CWD),
    ("postgres", "Bash", "psql -h localhost -U postgres -c 'select 1'", PASS, CWD),
    ("postgres", "Bash", "pg_dump -U postgres shop > dump.sql", PASS, CWD),
    ("postgres", "Bash", "sudo systemctl restart postgresql", DENY, CWD),
    ("postgres", "Bash", "pg_ctl -D /var/lib/pgsql/data restart", DENY, CWD),
    ("postgres", "Bash", "docker compose stop postgres", DENY, CWD),
    # --- a file: docker-compose.yml (relative claim: that file in any directory) -------------------
    ("docker-compose.yml", "Bash", "cat docker-compose.yml", PASS, CWD),
    ("docker-compose.yml", "Bash", "grep image: ./docker-compose.yml", PASS, CWD),
    ("docker-compose.yml", "Bash", "diff docker-compose.yml docker-compose.prod.yml", PASS, CWD),
    ("docker-compose.yml", "Bash", "git log -p -- docker-compose.yml", PASS, CWD),
    ("docker-compose.yml", "Bash", "sed -n '1,20p' docker-compose.yml", PASS, CWD),
    ("docker-compose.yml", "Bash", "cp docker-compose.yml /tmp/compose.bak", PASS, CWD),
    ("docker-compose.yml", "Bash", "docker compose -f docker-compose.yml config", PASS, CWD),
    ("docker-compose.yml", "Bash", "yq '.services' docker-compose.yml", PASS, CWD),
    ("docker-compose.yml", "Bash", "echo '# docker-compose.yml is claimed' > notes.md", PASS, CWD),
    ("docker-compose.yml", "Bash", "cat docker-compose.yml.bak > /dev/null 2>&1", PASS, CWD),
    ("docker-compose.yml", "Bash", "echo 'x: 1' >> docker-compose.yml", DENY, CWD),
    ("docker-compose.yml", "Bash", "echo 'x: 1' > ./docker-compose.yml", DENY, CWD),
    ("docker-compose.yml", "Bash", "sed -i 's/8080/8081/' docker-compose.yml", DENY, CWD),
    ("docker-compose.yml", "Bash", "sed -i.bak -e 's/a/b/' /home/dev/shop/docker-compose.yml", DENY, CWD),
    ("docker-compose.yml", "Bash", "cat new.yml | tee docker-compose.yml", DENY, CWD),
    ("docker-compose.yml", "Bash", "mv docker-compose.new.yml docker-compose.yml", DENY, CWD),
    ("docker-compose.yml", "Bash", "cp templates/compose.yml ../shop/docker-compose.yml", DENY, CWD),
    ("docker-compose.yml", "Bash", "rm -f docker-compose.yml", DENY, CWD),
    ("docker-compose.yml", "Bash", "truncate -s 0 docker-compose.yml", DENY, CWD),
    ("docker-compose.yml", "Bash", "vi docker-compose.yml", DENY, CWD),
    ("docker-compose.yml", "Bash", "code docker-compose.yml", DENY, CWD),
    ("docker-compose.yml", "Bash", "chmod 600 docker-compose.yml", DENY, CWD),
    ("docker-compose.yml", "Bash", "git checkout -- docker-compose.yml", DENY, CWD),
    ("docker-compose.yml", "Bash", "yq -i '.services.api.image = \"x\"' docker-compose.yml", DENY, CWD),
    ("docker-compose.yml", "Bash", "cat > docker-compose.yml <<'EOF'\nservices: {}\nEOF", DENY, CWD),
    ("docker-compose.yml", "Bash", "rm *.yml", DENY, CWD),
    ("docker-compose.yml", "Bash", "python scripts/bump.py docker-compose.yml", DENY, CWD),
    ("docker-compose.yml", "Bash", "rm F:\\Docker\\clambake\\docker-compose.yml", DENY, WIN_CWD),
    ("docker-compose.yml", "PowerShell", "Get-Content .\\docker-compose.yml", PASS, WIN_CWD),
    ("docker-compose.yml", "PowerShell", "Set-Content -Path .\\docker-compose.yml -Value 'services: {}'", DENY,
     WIN_CWD),
    ("docker-compose.yml", "PowerShell", "Remove-Item F:\\Docker\\clambake\\Docker-Compose.YML", DENY, WIN_CWD),
    ("docker-compose.yml", "PowerShell", "'x' | Out-File -Append docker-compose.yml", DENY, WIN_CWD),
    ("docker-compose.yml", "PowerShell", "Copy-Item -Path docker-compose.yml -Destination backup.yml", PASS,
     WIN_CWD),
    ("docker-compose.yml", "Write", "/home/dev/shop/docker-compose.yml", DENY, CWD),
    ("docker-compose.yml", "Edit", "docker-compose.yml", DENY, CWD),
    ("docker-compose.yml", "MultiEdit", "/home/dev/shop/docker-compose.yml", DENY, CWD),
    ("docker-compose.yml", "Edit", "F:\\Docker\\clambake\\docker-compose.yml", DENY, WIN_CWD),
    ("docker-compose.yml", "Edit", "/home/dev/shop/docker-compose.yml.bak", PASS, CWD),
    ("docker-compose.yml", "Write", "/home/dev/shop/src/app.py", PASS, CWD),
    # --- an absolute file, Windows spelling ---------------------------------------------------------
    ("F:/Docker/clambake/config/app.yml", "Bash", "cat .\\config\\app.yml", PASS, WIN_CWD),
    ("F:/Docker/clambake/config/app.yml", "Bash", "echo x > .\\config\\app.yml", DENY, WIN_CWD),
    ("F:/Docker/clambake/config/app.yml", "Bash", "sed -i s/a/b/ /f/Docker/clambake/config/app.yml", DENY,
     WIN_CWD),
    ("F:/Docker/clambake/config/app.yml", "Edit", "f:\\docker\\CLAMBAKE\\config\\APP.yml", DENY, WIN_CWD),
    ("F:/Docker/clambake/config/app.yml", "Edit", "F:\\Docker\\other\\config\\app.yml", PASS, WIN_CWD),
    ("F:/Docker/clambake/config/app.yml", "PowerShell", "Remove-Item -Recurse F:\\Docker\\clambake\\config",
     DENY, WIN_CWD),
    # --- a directory -------------------------------------------------------------------------------
    ("/home/dev/shop/db/migrations/", "Write", "/home/dev/shop/db/migrations/0042_add_index.sql", DENY, CWD),
    ("/home/dev/shop/db/migrations/", "Bash", "ls db/migrations && cat db/migrations/0001.sql", PASS, CWD),
    ("/home/dev/shop/db/migrations/", "Bash", "rm db/migrations/0041.sql", DENY, CWD),
    ("/home/dev/shop/db/migrations/", "Bash", "rm -rf /home/dev/shop/db", DENY, CWD),
    # --- globs ------------------------------------------------------------------------------------
    ("docker-compose*.yml", "Edit", "/home/dev/shop/docker-compose.prod.yml", DENY, CWD),
    ("docker-compose*.yml", "Edit", "/home/dev/shop/docker-compose.yml", DENY, CWD),
    ("docker-compose*.yml", "Bash", "cat docker-compose.override.yml", PASS, CWD),
    ("docker-compose*.yml", "Bash", "sed -i 's/a/b/' docker-compose.override.yml", DENY, CWD),
    ("docker-compose*.yml", "Edit", "/home/dev/shop/compose/other.yml", PASS, CWD),
    ("config/**", "Write", "/home/dev/shop/config/nginx/site.conf", DENY, CWD),
    ("config/**", "Bash", "echo on > config/feature_flags", DENY, CWD),
    ("config/**", "Bash", "cat config/nginx/site.conf", PASS, CWD),
    ("config/**", "Bash", "grep -rn listen config/", PASS, CWD),
    ("config/**", "Write", "/home/dev/shop/src/config.py", PASS, CWD),
    ("config/**", "PowerShell", "Set-Content .\\config\\app.yml 'x: 1'", DENY, WIN_CWD),
    ("config/**", "PowerShell", "Get-ChildItem .\\config\\*.yml | Remove-Item", DENY, WIN_CWD),
    ("config/**", "PowerShell", "Get-ChildItem .\\config -Recurse | Select-Object Name", PASS, WIN_CWD),
    # --- ports ------------------------------------------------------------------------------------
    ("port:8081", "Bash", "python -m http.server 8081", DENY, CWD),
    ("port:8081", "Bash", "python3 manage.py runserver 0.0.0.0:8081", DENY, CWD),
    ("port:8081", "Bash", "uvicorn app.main:app --reload --port 8081", DENY, CWD),
    ("port:8081", "Bash", "npm run dev -- --port=8081", DENY, CWD),
    ("port:8081", "Bash", "PORT=8081 npm start", DENY, CWD),
    ("port:8081", "Bash", "docker run -d -p 8081:80 nginx", DENY, CWD),
    ("port:8081", "Bash", "docker run -p 127.0.0.1:8081:80 nginx", DENY, CWD),
    ("port:8081", "Bash", "fuser -k 8081/tcp", DENY, CWD),
    ("port:8081", "Bash", "kill $(lsof -ti:8081)", DENY, CWD),
    ("port:8081", "Bash", "lsof -ti tcp:8081 | xargs kill -9", DENY, CWD),
    ("port:8081", "Bash", "lsof -ti tcp:8081 | xargs ps -o pid,cmd -p", PASS, CWD),
    ("docker-compose.yml", "Bash", "ls *.yml | xargs rm", DENY, CWD),
    ("port:8081", "Bash", "npx kill-port 8081", DENY, CWD),
    ("port:8081", "Bash", "nc -l 8081", DENY, CWD),
    ("port:8081", "Bash", "php -S localhost:8081 -t public", DENY, CWD),
    ("port:8081", "Bash", "curl -s http://localhost:8081/health", PASS, CWD),
    ("port:8081", "Bash", "curl localhost:8081", PASS, CWD),
    ("port:8081", "Bash", "wget -qO- 127.0.0.1:8081/metrics", PASS, CWD),
    ("port:8081", "Bash", "lsof -i :8081", PASS, CWD),
    ("port:8081", "Bash", "ss -ltnp | grep 8081", PASS, CWD),
    ("port:8081", "Bash", "fuser 8081/tcp", PASS, CWD),
    ("port:8081", "Bash", "nc -z localhost 8081", PASS, CWD),
    ("port:8081", "Bash", "echo 8081", PASS, CWD),
    ("port:8081", "Bash", "docker ps --filter publish=8081", PASS, CWD),
    ("port:8081", "Bash", "python -m http.server 18081", PASS, CWD),
    ("port:8081", "Bash", "python -m http.server 8080", PASS, CWD),
    ("port:8081", "PowerShell", "Get-NetTCPConnection -LocalPort 8081", PASS, WIN_CWD),
    ("port:8081", "PowerShell", "Stop-Process -Id (Get-NetTCPConnection -LocalPort 8081).OwningProcess", DENY,
     WIN_CWD),
    ("port:8081", "Monitor", "python -m http.server 8081", DENY, CWD),
    # the same port claimed in other spellings
    ("8081", "Bash", "python -m http.server 8081", DENY, CWD),
    ("port 8081", "Bash", "python -m http.server 8081", DENY, CWD),
    ("port 8081", "Bash", "curl localhost:8081", PASS, CWD),
]


def tool_input(tool, target):
    if tool in clambake.GUARD_SHELL_TOOLS:
        return {"command": target, "description": "run it"}
    if tool == "NotebookEdit":
        return {"notebook_path": target, "new_source": "x = 1"}
    if tool == "Write":
        return {"file_path": target, "content": "services: {}\n"}
    return {"file_path": target, "old_string": "a", "new_string": "b"}


def row_id(row):
    return "%s|%s|%s" % (row[0], row[1], row[2][:60])


@pytest.mark.parametrize("resource,tool,target,expected,cwd", TABLE, ids=[row_id(r) for r in TABLE])
def test_guard_table(resource, tool, target, expected, cwd):
    got = clambake.resource_hits(clambake.canon_resource(resource), tool, tool_input(tool, target), cwd)
    assert got == expected, "%s %r with %s claimed: expected %s" % (
        tool, target, resource, "deny" if expected else "pass")


def test_guard_table_size_and_counts():
    kinds = Counter()
    for resource, _tool, _target, expected, _cwd in TABLE:
        kind = clambake.resource_kind(resource)[0]
        kinds[(kind, "denied" if expected else "allowed")] += 1
    assert len(TABLE) >= 80
    for kind in ("name", "file", "glob", "port"):
        assert kinds[(kind, "denied")] >= 4 and kinds[(kind, "allowed")] >= 4, kinds
    tools = {row[1] for row in TABLE}
    assert {"Bash", "PowerShell", "Monitor", "Write", "Edit", "MultiEdit"} <= tools
    print("\n[clambake guard] table: %d rows; %s" % (len(TABLE), ", ".join(
        "%s %s %d" % (k[0], k[1], v) for k, v in sorted(kinds.items()))))


def test_notebook_edit_is_guarded():
    ti = {"notebook_path": "/home/dev/shop/notebooks/analysis.ipynb", "new_source": "x = 1"}
    assert clambake.resource_hits("notebooks/analysis.ipynb", "NotebookEdit", ti, CWD)
    assert not clambake.resource_hits("notebooks/other.ipynb", "NotebookEdit", ti, CWD)


@pytest.mark.parametrize("spelling", ["8081", "port:8081", "port 8081", "PORT 8081", ":8081", "port=8081",
                                      "port:8081/tcp", "\uff18\uff10\uff18\uff11"])
def test_port_spellings_have_one_canonical_form(spelling):
    assert clambake.canon_resource(spelling) == "port:8081"


def test_resource_kinds():
    assert clambake.resource_kind("docker") == ("name", "docker")
    assert clambake.resource_kind("Postgres") == ("name", "postgres")
    assert clambake.resource_kind("docker-compose.yml")[0] == "file"
    assert clambake.resource_kind(".env")[0] == "file"
    assert clambake.resource_kind("db/migrations")[0] == "file"
    assert clambake.resource_kind("config/**")[0] == "glob"
    assert clambake.resource_kind("8080") == ("port", 8080)
    assert clambake.resource_kind("99999")[0] == "name"       # no such port


def test_path_comparison_folds_case_on_windows_paths_only():
    assert clambake.path_key("F:\\Docker\\Clambake\\App.yml") == "f:/docker/clambake/app.yml"
    assert clambake.path_key(".\\config\\app.yml", "F:\\Docker\\clambake") == "f:/docker/clambake/config/app.yml"
    assert clambake.path_key("/f/Docker/x", "F:\\Docker", fold=True) == "f:/docker/x"
    assert clambake.path_key("./src/../App.py", "/home/dev") == "/home/dev/App.py"   # POSIX: case kept
    assert clambake.path_key("/home/Dev/App.py", fold=True) == "/home/dev/app.py"      # what Windows does
    assert clambake.fold_paths("F:/x") and clambake.fold_paths("\\\\server\\share\\x")
    assert clambake.fold_paths("/home/dev") == (os.name == "nt")
    assert clambake.path_hits("/home/dev/shop/Docker-Compose.yml", "docker-compose.yml", "file") == (os.name == "nt")


def test_a_huge_write_is_still_judged():
    """More than 4 MiB of content: the whole hook JSON is read and the claimed file still matched."""
    data = json.dumps({"tool_name": "Write", "tool_input": {"file_path": "/home/dev/shop/docker-compose.yml",
                                                              "content": "x" * (5 * 1024 * 1024)}})
    assert len(data) > 5 * 1024 * 1024
    assert clambake.resource_hits("docker-compose.yml", "Write", json.loads(data)["tool_input"], CWD)


# --------------------------------------------------------------------------
# through the real hook, against the real database
# --------------------------------------------------------------------------

def payload(session, cwd, tool, tool_input_):
    """PreToolUse JSON as Claude Code writes it on the hook's stdin."""
    return {"session_id": session,
            "transcript_path": "/home/dev/.claude/projects/-home-dev-shop/%s.jsonl" % session,
            "cwd": str(cwd), "permission_mode": "default", "hook_event_name": "PreToolUse",
            "tool_name": tool, "tool_input": tool_input_, "tool_use_id": "toolu_01" + uuid.uuid4().hex[:20]}


INPROC_ENV = {"CLAUDE_CODE_SESSION_ID": None, "CLAMBAKE_STATEMENT_TIMEOUT": None, "CLAMBAKE_HOOK_TIMEOUT": "60"}


@pytest.fixture
def sessions(db, cb, tmp_path):
    """Session A (in /shop) and session B (holder, in /billing), both started through the hook."""
    shop, billing = tmp_path / "shop", tmp_path / "billing"
    shop.mkdir()
    billing.mkdir()
    out = {}
    for name, d in (("a", shop), ("b", billing)):
        s = str(uuid.uuid4())
        res = cb("hook", "session-start", input=json.dumps({
            "session_id": s, "transcript_path": "/t/%s.jsonl" % s, "cwd": str(d),
            "hook_event_name": "SessionStart", "source": "startup"}), env=INPROC_ENV)
        assert res.code == 0, res
        iid = json.loads(res.out)["hookSpecificOutput"]["additionalContext"].split("you are instance ")[1].split()[0]
        out[name] = (s, iid, d)
    return out


def run_hook(cb, data, env=None):
    e = dict(INPROC_ENV)
    e.update(env or {})
    res = cb("hook", "pre-tool", input=json.dumps(data), env=e)
    assert res.code == 0 and "Traceback" not in res.err, res
    return json.loads(res.out)["hookSpecificOutput"] if res.out.strip() else None


HOOK_SAMPLE = [r for r in TABLE if r[0] in ("docker", "port:8081", "docker-compose.yml", "config/**")
               and r[1] in ("Bash", "PowerShell", "Write", "Edit")][::5]


def test_real_hook_agrees_with_the_table(cb, sessions):
    (sa, _, _), (_, b, _) = sessions["a"], sessions["b"]
    resources = sorted({r[0] for r in HOOK_SAMPLE})
    for r in resources:
        assert cb("--as", b, "send", "--type", "blocker", "--resource", r, "--subject", "working on " + r).code == 0
    assert len(HOOK_SAMPLE) >= 10
    for resource, tool, target, expected, cwd in HOOK_SAMPLE:
        # only the row's own resource may decide: hold just that one
        others = [x for x in resources if x != resource]
        out = run_hook(cb, payload(sa, cwd, tool, tool_input(tool, target)))
        if expected:
            assert out and out["permissionDecision"] == "deny", (tool, target)
        elif out is not None:
            # another held resource may deny this row; then it must name one of those, not this one
            assert not out["permissionDecisionReason"].startswith("clambake: %s " % resource), (tool, target)
            assert any(out["permissionDecisionReason"].startswith("clambake: %s " % o) for o in others)


def test_issue_examples_through_the_hook(cb, sessions):
    (sa, a, shop), (_, b, _) = sessions["a"], sessions["b"]
    assert cb("--as", b, "send", "--type", "blocker", "--resource", "docker", "--subject",
              "rebuilding the base images").code == 0
    for command in ("docker ps", "docker compose logs api", "git log -- docker/", "grep -r docker README.md",
                    "cat docker-compose.yml"):
        assert run_hook(cb, payload(sa, shop, "Bash", {"command": command})) is None, command
    for command in ("docker compose down", "docker restart x", "systemctl restart docker"):
        out = run_hook(cb, payload(sa, shop, "Bash", {"command": command}))
        assert out["permissionDecision"] == "deny", command
    assert cb("--as", a, "check", "docker").code == 1          # reads pass, but the claim stands
    # the holder itself is never denied
    sb = sessions["b"][0]
    assert run_hook(cb, payload(sb, sessions["b"][2], "Bash", {"command": "docker compose down"})) is None


def test_denial_is_two_short_lines_with_one_command(cb, cbp, sessions):
    (sa, _, shop), (_, b, _) = sessions["a"], sessions["b"]
    assert cb("--as", b, "send", "--type", "blocker", "--resource", "docker", "--subject",
              "rebuilding the base images").code == 0
    out = run_hook(cb, payload(sa, shop, "Bash", {"command": "docker compose down"}))
    reason = out["permissionDecisionReason"]
    lines = reason.splitlines()
    assert len(lines) == 2, reason
    assert lines[0].startswith("clambake: docker is claimed by %s (" % b) and " ago" in lines[0]
    assert "rebuilding the base images" in lines[0]
    assert lines[1].startswith("wait for it: ") and lines[1].endswith("wait --resource docker --timeout 110s")
    # the one command runs as printed (from another directory) and, the holder still there, times out
    command = lines[1].split(": ", 1)[1].replace("--timeout 110s", "--timeout 1s")
    import shlex
    argv = shlex.split(command)
    assert argv[-5:] == ["wait", "--resource", "docker", "--timeout", "1s"]
    res = cbp(*argv[argv.index("wait"):], cwd=str(shop))
    assert res.code == 1 and "still held" in res.out
    chars = len(reason)
    assert chars <= 260, reason
    print("\n[clambake guard] denial: %d characters, ~%d tokens: %r" % (chars, round(chars / 4), reason))


def test_port_claim_check_and_guard_agree(cb, sessions):
    (sa, a, shop), (_, b, _) = sessions["a"], sessions["b"]
    res = cb("--as", b, "send", "--type", "blocker", "--resource", "port 8081", "--subject", "dev server")
    assert res.code == 0 and "claimed port:8081" in res.out, res
    for spelling in ("8081", "port:8081", "port 8081", ":8081"):
        res = cb("--as", a, "check", spelling)
        assert res.code == 1 and res.out.startswith("port:8081: held by %s" % b), (spelling, res)
    # a second claim in another spelling is the same claim: refused
    res = cb("--as", a, "send", "--type", "blocker", "--resource", "8081", "--subject", "mine")
    assert res.code == 1 and "port:8081 is claimed by %s" % b in res.err
    out = run_hook(cb, payload(sa, shop, "Bash", {"command": "python -m http.server 8081"}))
    assert out["permissionDecision"] == "deny" and "port:8081" in out["permissionDecisionReason"]
    assert run_hook(cb, payload(sa, shop, "Bash", {"command": "curl -s localhost:8081/health"})) is None
    # done in yet another spelling releases it
    assert cb("--as", b, "send", "--type", "done", "--resource", ":8081", "--subject", "stopped").code == 0
    assert cb("--as", a, "check", "8081").code == 0


@pytest.mark.parametrize("held,asked", [("docker-compose.yml", "docker-compose.yaml"), ("postgres", "postgress")])
def test_check_and_blocker_warn_about_a_nearly_matching_held_name(cb, sessions, held, asked):
    a, b = sessions["a"][1], sessions["b"][1]
    assert cb("--as", b, "send", "--type", "blocker", "--resource", held, "--subject", "busy").code == 0
    res = cb("--as", a, "check", asked)
    assert res.code == 0 and res.out.startswith(asked + ": free")          # a different name: free...
    assert "note: %s (nearly the same name) is held by %s" % (held, b) in res.err   # ...but said
    res = cb("--as", a, "send", "--type", "blocker", "--resource", asked, "--subject", "mine")
    assert res.code == 0 and "nearly the same name" in res.err and held in res.err
    # an unrelated name gets no note
    res = cb("--as", a, "check", "redis")
    assert res.code == 0 and "nearly" not in res.err


def test_powershell_and_monitor_tools_are_guarded(cb, sessions):
    (sa, _, shop), (_, b, _) = sessions["a"], sessions["b"]
    assert cb("--as", b, "send", "--type", "blocker", "--resource", "docker", "--subject", "upgrade").code == 0
    for tool, command in (("PowerShell", "Restart-Service docker"), ("Monitor", "docker compose up api")):
        out = run_hook(cb, payload(sa, shop, tool, {"command": command, "description": "x"}))
        assert out and out["permissionDecision"] == "deny", tool
    assert run_hook(cb, payload(sa, shop, "PowerShell", {"command": "docker ps"})) is None
    assert "PowerShell" in clambake.HOOK_EVENTS["pre-tool"][1] and "Monitor" in clambake.HOOK_EVENTS["pre-tool"][1]


def test_relative_paths_resolve_against_the_hook_cwd(cb, sessions):
    (sa, _, shop), (_, b, _) = sessions["a"], sessions["b"]
    target = str(shop / "config" / "app.yml")
    assert cb("--as", b, "send", "--type", "blocker", "--resource", target, "--subject", "tuning").code == 0
    assert run_hook(cb, payload(sa, shop, "Bash", {"command": "echo x > config/app.yml"}))
    assert run_hook(cb, payload(sa, shop, "Edit", tool_input("Edit", "config/app.yml")))
    # the same relative path from another directory is another file
    assert run_hook(cb, payload(sa, sessions["b"][2], "Bash", {"command": "echo x > config/app.yml"})) is None


# --------------------------------------------------------------------------
# Windows: a console code page that is not UTF-8
# --------------------------------------------------------------------------

CP1252_ENV = {"PYTHONIOENCODING": "cp1252", "PYTHONUTF8": "0", "LC_ALL": "C", "LANG": "C"}


def test_utf8_hook_json_under_a_cp1252_console_is_still_denied(cbp, cb, sessions):
    """U+0141 (L with stroke) is C5 81 in UTF-8; 0x81 is undefined in cp1252, so a hook that decoded
    stdin with the console code page saw garbage, parsed {} and let the command through."""
    (sa, _, shop), (_, b, _) = sessions["a"], sessions["b"]
    assert cb("--as", b, "send", "--type", "blocker", "--resource", "docker", "--subject", "upgrade").code == 0
    data = payload(sa, shop, "Bash", {"command": "docker compose down  # \u0141\u00f3d\u017a caf\u00e9",
                                      "description": "Neustart f\u00fcr \u0141\u00f3d\u017a"})
    raw = json.dumps(data, ensure_ascii=False)
    assert "\u0141".encode("utf-8") in raw.encode("utf-8")
    res = cbp("hook", "pre-tool", input=raw, env=CP1252_ENV)
    assert res.code == 0, res
    out = json.loads(res.out)["hookSpecificOutput"]
    assert out["permissionDecision"] == "deny" and b in out["permissionDecisionReason"]
    res.out.encode("ascii")                         # what the hook prints is plain ASCII JSON


def test_body_from_stdin_is_utf8_under_a_cp1252_console(cbp, cb, sessions):
    a, b = sessions["a"][1], sessions["b"][1]
    body = "Neustart in \u0141\u00f3d\u017a \u2014 caf\u00e9 \u2713"
    res = cbp("--as", a, "send", "--to", b, "--subject", "utf8", "--body", "-", input=body, env=CP1252_ENV)
    assert res.code == 0, res
    got = cb.json("--as", b, "inbox", "--peek")["messages"][0]["body"]
    assert got == body
    res = cbp("--as", a, "remember", "--global", "--type", "lesson", "--title", "utf8 content",
              "--content", "-", input=body, env=CP1252_ENV)
    assert res.code == 0, res
    assert body in cb.json("recall", "--global", "--full")["memories"][0]["content"]


def test_same_dir_folds_case_for_windows_paths():
    assert clambake.same_dir("F:\\Docker\\Clambake", "f:\\docker\\clambake")
    assert clambake.same_dir("F:/Docker/Clambake", "F:/DOCKER/clambake")
    assert clambake.same_dir("/home/dev/Shop", "/home/dev/shop") == (os.name == "nt")
    assert clambake.same_dir("/home/dev/shop", "/home/dev/shop")


def test_directory_identity_is_case_insensitive_on_windows(db, cb, sql, tmp_path, monkeypatch):
    """A session registered as F:\\Docker\\Clambake is found from f:\\docker\\clambake on Windows.  Here
    (POSIX) the stored directory is given another case and Windows' rule switched on for the lookup."""
    d = tmp_path / "Shop"
    d.mkdir()
    iid = cb.json("register", "--project", "shop", "--dir", str(d))["instance_id"]
    sql("UPDATE clambake.instances SET working_dir = upper(working_dir) WHERE instance_id = %s", (iid,))
    assert cb("whoami", cwd=str(d)).code == 1                   # POSIX: another case is another directory
    monkeypatch.setattr(clambake, "fold_paths", lambda *paths: True)
    res = cb("whoami", cwd=str(d))
    assert res.code == 0 and res.out.startswith(iid), res


def test_check_notes_a_held_glob_or_directory_that_covers_the_file(cb, sessions):
    a, b = sessions["a"][1], sessions["b"][1]
    assert cb("--as", b, "send", "--type", "blocker", "--resource", "config/**", "--subject", "reorg").code == 0
    res = cb("--as", a, "check", "config/nginx/site.conf")
    assert res.code == 0 and "note: config/**, which covers config/nginx/site.conf, is held by %s" % b in res.err
    assert "covers" not in cb("--as", a, "check", "src/app.py").err


def test_a_write_of_several_mib_through_the_real_hook_is_denied(cbp, cb, sessions):
    """Claude Code pipes the whole tool input; a 5 MiB Write used to be cut at 4 MiB and fail open."""
    (sa, _, shop), (_, b, _) = sessions["a"], sessions["b"]
    assert cb("--as", b, "send", "--type", "blocker", "--resource", "docker-compose.yml",
              "--subject", "adding redis").code == 0
    data = payload(sa, shop, "Write", {"file_path": str(shop / "docker-compose.yml"),
                                       "content": "# \u00e9\n" + "x: 1\n" * (1024 * 1024)})
    raw = json.dumps(data)
    assert len(raw) > 5 * 1024 * 1024
    res = cbp("hook", "pre-tool", input=raw)
    assert res.code == 0, res
    assert json.loads(res.out)["hookSpecificOutput"]["permissionDecision"] == "deny"


def test_a_stray_non_utf8_byte_does_not_let_a_denied_command_through(cb, sessions):
    """One byte of the console's code page (0xE9, e in cp1252) inside the hook JSON: the rest still
    parses and the command is still denied."""
    import subprocess
    from conftest import SCRIPT
    (sa, _, shop), (_, b, _) = sessions["a"], sessions["b"]
    assert cb("--as", b, "send", "--type", "blocker", "--resource", "docker", "--subject", "upgrade").code == 0
    raw = json.dumps(payload(sa, shop, "Bash", {"command": "docker compose down", "description": "caf@"}))
    raw = raw.encode("ascii").replace(b"caf@", b"caf\xe9")
    proc = subprocess.run([sys.executable, SCRIPT, "hook", "pre-tool"], input=raw, capture_output=True,
                          timeout=60, env=dict(os.environ, **CP1252_ENV))
    assert proc.returncode == 0, proc
    assert json.loads(proc.stdout)["hookSpecificOutput"]["permissionDecision"] == "deny"


@pytest.mark.parametrize("spelling,stored", [("./docker-compose.yml", "docker-compose.yml"),
                                             (".\\config\\app.yml", "config/app.yml"),
                                             ("db//migrations/", "db/migrations/"),
                                             ("F:\\Docker\\Clambake\\.env", "f:/docker/clambake/.env"),
                                             ("\\\\srv\\share\\cfg.yml", "//srv/share/cfg.yml")])
def test_path_resources_have_one_stored_form(spelling, stored):
    assert clambake.canon_resource(spelling) == stored


def test_claim_in_one_path_spelling_is_held_in_another(cb, sessions):
    a, b = sessions["a"][1], sessions["b"][1]
    assert cb("--as", b, "send", "--type", "blocker", "--resource", ".\\config\\app.yml", "--subject", "x").code == 0
    res = cb("--as", a, "check", "./config/app.yml")
    assert res.code == 1 and res.out.startswith("config/app.yml: held by %s" % b), res
