"""argv secret redaction: built-in rules, user rule files, malformed files."""

from __future__ import annotations

import textwrap
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import assert_file_line_error
from opensre.errors import RuleError
from opensre.redact import Redactor, default_redactor
from opensre.redact.redactor import BUILTIN_RULES

M = Redactor.MASK


@pytest.fixture(scope="module")
def r() -> Redactor:
    return Redactor.from_files()


def write(tmp_path, text: str, name: str = "redact.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return p


# ------------------------------------------------------------ flag rules


@pytest.mark.parametrize(
    "argv, expected",
    [
        # generic secret flags, both forms, any case, _ or -, one or two dashes
        (["app", "--password=hunter2"], ["app", f"--password={M}"]),
        (["app", "--password", "hunter2", "x"], ["app", "--password", M, "x"]),
        (["app", "-password", "hunter2"], ["app", "-password", M]),
        (["app", "--PASSWORD=hunter2"], ["app", f"--PASSWORD={M}"]),
        (["app", "--token", "abc"], ["app", "--token", M]),
        (["app", "--api-key=k1", "--apikey", "k2", "--api_key", "k3"], ["app", f"--api-key={M}", "--apikey", M, "--api_key", M]),
        (["az", "--client-secret", "s", "--Client_Secret=s"], ["az", "--client-secret", M, f"--Client_Secret={M}"]),
        (["s3cmd", "--access-key=A", "--secret-key=B"], ["s3cmd", f"--access-key={M}", f"--secret-key={M}"]),
        (["svc", "--auth", "user:pw", "--passwd=x"], ["svc", "--auth", M, f"--passwd={M}"]),
        (["ansible-playbook", "--private-key", "/home/u/.ssh/id", "site.yml"], ["ansible-playbook", "--private-key", M, "site.yml"]),
        (["huggingface-cli", "login", "--token", "hf_abc"], ["huggingface-cli", "login", "--token", M]),
        (["openssl", "enc", "-pass", "pass:abc", "-k", "x", "-in", "f"], ["openssl", "enc", "-pass", M, "-k", M, "-in", "f"]),
        (["wget", "--password=x", "--http-password", "y", "http://h/f"], ["wget", f"--password={M}", "--http-password", M, "http://h/f"]),
        # mysql family: attached -pSECRET; a bare -p prompts, -P is the port
        (["mysql", "-uroot", "-psecret", "db"], ["mysql", "-uroot", f"-p{M}", "db"]),
        (["/usr/bin/mysqldump", "-h", "db", "-pS3cr3t!", "shop"], ["/usr/bin/mysqldump", "-h", "db", f"-p{M}", "shop"]),
        (["sudo", "mariadb", "-P3306", "-pX"], ["sudo", "mariadb", "-P3306", f"-p{M}"]),
        (["mysql", "--password=x", "db"], ["mysql", f"--password={M}", "db"]),
        # sshpass, curl, redis, ldap, smb, aws configure
        (["sshpass", "-p", "s3cr", "ssh", "user@host"], ["sshpass", "-p", M, "ssh", "user@host"]),
        (["sshpass", "-ps3cr", "ssh", "host"], ["sshpass", f"-p{M}", "ssh", "host"]),
        (["curl", "-u", "bob:pw", "https://x"], ["curl", "-u", f"bob:{M}", "https://x"]),
        (["curl", "--user", "bob:p:w", "https://x"], ["curl", "--user", f"bob:{M}", "https://x"]),
        (["curl", "--user=bob:pw", "-ubob:pw"], ["curl", f"--user=bob:{M}", f"-ubob:{M}"]),
        (["redis-cli", "-h", "r", "-a", "pw", "PING"], ["redis-cli", "-h", "r", "-a", M, "PING"]),
        (["ldapsearch", "-D", "cn=admin", "-w", "pw", "-b", "dc=x"], ["ldapsearch", "-D", "cn=admin", "-w", M, "-b", "dc=x"]),
        (["smbclient", "//srv/share", "-U", "bob%pw"], ["smbclient", "//srv/share", "-U", f"bob%{M}"]),
        (["aws", "configure", "set", "aws_secret_access_key", "abc"], ["aws", "configure", "set", "aws_secret_access_key", M]),
        # flag rules also run inside a command line held in one argument
        (["bash", "-c", "mysql -psecret db | gzip"], ["bash", "-c", f"mysql -p{M} db | gzip"]),
        (["ssh", "host", "sshpass -p pw scp a b"], ["ssh", "host", f"sshpass -p {M} scp a b"]),
    ],
)
def test_flag_rules_mask_values(r, argv, expected):
    assert r.redact_argv(argv) == (expected, True)


# ------------------------------------------------------------ value patterns


@pytest.mark.parametrize(
    "arg, expected",
    [
        ("postgres://app:pw@db:5432/shop", f"postgres://app:{M}@db:5432/shop"),
        ("https://user:ghp_p@ss@github.com/o/r.git", f"https://user:{M}@github.com/o/r.git"),
        ("redis://:pw@cache:6379/0", f"redis://:{M}@cache:6379/0"),
        ("AKIAIOSFODNN7EXAMPLE", M),
        ("key=ASIAIOSFODNN7EXAMPLE;", f"key={M};"),
        ("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", f"AWS_SECRET_ACCESS_KEY={M}"),
        ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG", f"aws_secret_access_key = {M}"),
        ("Authorization: Bearer abc.def", f"Authorization: {M}"),
        ("Authorization: Basic dXNlcjpwdw==", f"Authorization: {M}"),
        ("Bearer abc123", f"Bearer {M}"),
        ("password=hunter2", f"password={M}"),
        ("DB_PASSWORD=hunter2", f"DB_PASSWORD={M}"),
        ("PGPASSWORD=hunter2", f"PGPASSWORD={M}"),
        ("https://api.x/v1?token=abc&x=1", f"https://api.x/v1?token={M}&x=1"),
        ("secret=s1 other=2", f"secret={M} other=2"),
        ('{"password": "hunter2", "user": "bob"}', f'{{"password": "{M}", "user": "bob"}}'),
        ("X-Api-Key: k", f"X-Api-Key: {M}"),
        ("ghp_" + "a" * 36, M),
        ("github_pat_" + "A1_" * 10, M),
        ("xoxb-1234-5678-abcdefgh", M),
        ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln_-x", M),
        (
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\nNzaC1\n-----END OPENSSH PRIVATE KEY-----",
            f"-----BEGIN OPENSSH PRIVATE KEY-----{M}-----END OPENSSH PRIVATE KEY-----",
        ),
        # cut short by argv truncation: masked to the end
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIB", f"-----BEGIN RSA PRIVATE KEY-----{M}"),
    ],
)
def test_patterns_mask_secrets(r, arg, expected):
    assert r.redact_text(arg) == expected
    assert r.redact_argv(["tool", arg]) == (["tool", expected], True)


def test_patterns_inside_a_script(r):
    script = (
        "export GITHUB_TOKEN=ghp_abcdefghijklmnopqrstuvwxyz0123; "
        "curl -H 'Authorization: Bearer eyJa.eyJb.c' 'https://u:pw@h/x?token=t&page=2'"
    )
    out, changed = r.redact_argv(["bash", "-c", script])
    assert changed
    assert out[2] == (f"export GITHUB_TOKEN={M}; curl -H 'Authorization: {M}' 'https://u:{M}@h/x?token={M}&page=2'")


# ------------------------------------------------------------ no false positives


@pytest.mark.parametrize(
    "argv",
    [
        ["python", "-m", "http.server", "-p", "8080"],
        ["samtools", "sort", "-@", "4", "-o", "out.bam", "in.bam"],
        ["bwa", "mem", "-t", "2", "ref.fa", "r1.fq"],
        ["mysql", "-p", "shop"],  # bare -p: mysql prompts, `shop` is the database
        ["mysql", "-h", "db", "-P", "3306", "-u", "root"],
        ["curl", "-u", "bob", "https://example.org/a?page=2&sort=asc"],  # no password: curl prompts
        ["docker", "run", "-p", "8080:80", "nginx"],
        ["ssh", "-p", "2222", "user@host"],
        ["ffmpeg", "-i", "in.mp4", "-pass", "1", "-f", "null", "/dev/null"],
        ["mongod", "--auth", "--port", "27017"],  # --auth is a switch here
        ["torchrun", "--nproc_per_node=8", "train.py", "--max_tokens=4096", "--eos_token=</s>", "--lr", "3e-4"],
        ["python", "-c", "tok.pad_token = tok.eos_token"],
        ["cp", "/home/u/secrets/token.txt", "/tmp/password-list.txt"],
        ["git", "clone", "https://github.com/o/r.git", "--depth=1"],
        ["psql", "host=db dbname=shop user=app"],
        ["make", "-j8", "AUTHOR=me", "bypass=1"],
    ],
)
def test_ordinary_argv_unchanged(r, argv):
    assert r.redact_argv(argv) == (argv, False)


def test_empty_and_unicode(r):
    assert r.redact_argv([]) == ([], False)
    assert r.redact_argv([""]) == ([""], False)
    assert r.redact_argv(["écho", "ünïcødé", "日本語"]) == (["écho", "ünïcødé", "日本語"], False)
    assert r.redact_argv(["app", "--password=pässwörd", "--token", "秘密"]) == (["app", f"--password={M}", "--token", M], True)
    assert r.redact_text("url https://ü:пароль@host/") == f"url https://ü:{M}@host/"


def test_empty_or_missing_value_is_left_alone(r):
    assert r.redact_argv(["app", "--password"]) == (["app", "--password"], False)
    assert r.redact_argv(["app", "--password="]) == (["app", "--password="], False)


def test_input_is_not_modified(r):
    argv = ["app", "--password", "x"]
    r.redact_argv(argv)
    assert argv == ["app", "--password", "x"]


_SHARED = Redactor.from_files()  # hypothesis does not mix with function-scoped fixtures


# Arbitrary text, salted with words the rules react to so that flag handling
# (values taken from the next argument, nested command lines) is exercised too.
_words = st.sampled_from(["--password", "-p", "-pX", "mysql", "curl", "-u", "a:b", "--token=", "bash -c", "x://u:p@h", " "])
_args = st.one_of(st.text(), _words, st.lists(st.one_of(st.text(), _words)).map("".join))


@settings(max_examples=300, deadline=None)
@given(st.lists(_args))
def test_never_raises_and_never_adds_arguments(argv):
    out, changed = _SHARED.redact_argv(argv)
    assert len(out) == len(argv)
    assert changed == (out != argv)
    assert all(isinstance(a, str) for a in out)


@pytest.mark.parametrize("arg", ["a." * 5000, "a_" * 5000, "token:" + " " * 10000, "a://" + "b:" * 5000, "eyJ" * 3000])
def test_pathological_arguments_stay_fast(arg):
    # argv is attacker-influenced: no rule may backtrack quadratically on it
    start = time.perf_counter()
    _SHARED.redact_argv(["bash", "-c", arg])
    assert time.perf_counter() - start < 1.0


# ------------------------------------------------------------ user rule files


def test_user_file_adds_a_rule_and_disables_a_builtin(r, tmp_path):
    user = write(
        tmp_path,
        """
        disable: [curl-user, no-such-rule]   # unknown names are ignored
        rules:
          - name: vault-token
            kind: flag
            tools: [vault]
            flags: [-t]
            forms: [next, attached]
          - name: internal-ticket
            kind: pattern
            regex: 'TICKET-(?P<secret>[0-9]+)'
        """,
    )
    assert r.redact_argv(["curl", "-u", "bob:pw", "u"])[0] == ["curl", "-u", f"bob:{M}", "u"]
    mine = Redactor.from_files([user])
    assert mine.redact_argv(["curl", "-u", "bob:pw", "u"]) == (["curl", "-u", "bob:pw", "u"], False)
    assert mine.redact_argv(["vault", "-t", "s.abc", "read"]) == (["vault", "-t", M, "read"], True)
    assert mine.redact_argv(["other", "-t", "4"]) == (["other", "-t", "4"], False)  # tool-scoped
    assert mine.redact_text("see TICKET-1234") == f"see TICKET-{M}"
    assert mine.redact_argv(["app", "--password", "x"])[0] == ["app", "--password", M]  # others still on


def test_user_rule_with_a_builtin_name_replaces_it(tmp_path):
    user = write(tmp_path, "rules:\n  - {name: secret-flags, kind: flag, flags: [--mine]}\n")
    mine = Redactor.from_files([user])
    assert mine.redact_argv(["app", "--mine", "x", "--token", "y"])[0] == ["app", "--mine", M, "--token", "y"]


def test_files_apply_in_order_and_empty_file_is_fine(tmp_path):
    a = write(tmp_path, "rules:\n  - {name: a, kind: pattern, regex: 'foo'}\n", "a.yaml")
    b = write(tmp_path, "disable: [a]\n", "b.yaml")
    empty = write(tmp_path, "# nothing yet\n", "empty.yaml")
    assert Redactor.from_files([str(a), empty]).redact_text("foo") == M
    assert Redactor.from_files([a, b]).redact_text("foo") == "foo"


def test_default_redactor_reads_the_xdg_user_file(tmp_path, monkeypatch):
    (tmp_path / "opensre").mkdir()
    write(tmp_path / "opensre", "rules:\n  - {name: x, kind: pattern, regex: zebra}\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    default_redactor.cache_clear()
    try:
        d = default_redactor()
        assert d is default_redactor()  # cached
        assert d.redact_text("a zebra") == f"a {M}"
        monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "none"))
        default_redactor.cache_clear()
        assert default_redactor().redact_text("a zebra") == "a zebra"
    finally:
        default_redactor.cache_clear()


def test_builtin_rules_file_is_well_formed():
    names = [rule.name for rule in Redactor.from_files().rules]
    assert len(names) == len(set(names))
    assert BUILTIN_RULES.is_file()


# ------------------------------------------------------------ malformed files


@pytest.mark.parametrize(
    "text, line, words",
    [
        # YAML syntax: the line comes from the parser's problem mark
        ("rules:\n  - name: a\n    kind: pattern\n    regex: x: y\n", 4, "YAML syntax error"),
        ("rules:\n  - name: a\n    kind: pattern\n   regex: x\n", 4, "YAML syntax error"),
        # semantic errors: the line of the rule
        ("# mine\nrules:\n  - name: ok\n    kind: pattern\n    regex: abc\n\n  - name: x\n    kind: pattern\n    regex: '('\n",
         7, "rule 'x': invalid regex '(' (missing ): ("),
        ("rules:\n  - name: ok\n    kind: flag\n    flags: [--a]\n  - name: y\n    kind: flag\n    flags: [--b]\n    colour: red\n",
         5, "rule 'y': unknown key 'colour'"),
        ("rules:\n  - name: v\n    kind: flag\n    flags: [--v]\n    value: '[a-'\n", 2, "rule 'v': invalid regex"),
        ("rules:\n  - name: z\n    kind: nope\n", 2, "unknown kind 'nope'"),
        ("rules:\n  - kind: pattern\n    regex: a\n", 2, "rule without a 'name'"),
        ("rules:\n  - {name: f, kind: flag, flags: [--x], forms: [sideways]}\n", 2, "'forms'"),
        ("rules:\n  - {name: f, kind: flag}\n", 2, "'flags'"),
        ("rules:\n  - {name: d, kind: pattern, regex: a}\n  - {name: d, kind: pattern, regex: b}\n", 3, "duplicate rule name 'd'"),
        ("version: 1\ncolour: red\n", 2, "unknown key 'colour'"),
        ("version: 2\n", 1, "unsupported version"),
        ("disable: curl-user\n", 1, "'disable' must be a list"),
        ("- a\n- b\n", 1, "expected a mapping"),
    ],
)
def test_malformed_file_names_file_and_line(tmp_path, text, line, words):
    p = write(tmp_path, text)
    assert_file_line_error(lambda: Redactor.from_files([p]), p, line, words)


def test_unreadable_file(tmp_path):
    with pytest.raises(RuleError, match="cannot read"):
        Redactor.from_files([tmp_path / "missing.yaml"])


def test_paths_go_through_the_pattern_rules():
    from opensre.redact import Redactor

    r = Redactor.from_files()
    tok = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    assert r.redact_path(f"/home/u/tok_{tok}/run") == "/home/u/tok_***/run"
    assert r.redact_path("/usr/bin/samtools") == "/usr/bin/samtools"
    assert r.redact_path(None) is None
    # flag rules are for options: a directory named like one is not a secret's flag
    assert r.redact_path("/data/--password/x") == "/data/--password/x"
