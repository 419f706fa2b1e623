"""The one cache folder and the one checked download (ganforge.cache)."""

import hashlib
import io
import urllib.error
from pathlib import Path

import pytest

from ganforge.cache import ChecksumError, cache_root, download, sha256_file, sha256_matches


def test_cache_root_default_env_override_and_tilde(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GANFORGE_CACHE", raising=False)
    assert cache_root() == tmp_path / "home" / ".cache" / "ganforge"
    monkeypatch.setenv("GANFORGE_CACHE", "")  # empty: as if unset
    assert cache_root() == tmp_path / "home" / ".cache" / "ganforge"
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "elsewhere"))
    assert cache_root() == tmp_path / "elsewhere"
    monkeypatch.setenv("GANFORGE_CACHE", "~/gf-cache")
    assert cache_root() == tmp_path / "home" / "gf-cache"


def test_every_cache_user_follows_the_one_root(monkeypatch, tmp_path):
    from ganforge.metrics.inception import weights_cache_dir
    from ganforge.serve.site import npm_cache_dir

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GANFORGE_CACHE", "~/c")
    assert weights_cache_dir() == tmp_path / "home" / "c" / "weights"
    assert npm_cache_dir() == tmp_path / "home" / "c" / "npm"


def test_sha256_file_and_prefixes(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"ganforge" * 1000)
    digest = hashlib.sha256(b"ganforge" * 1000).hexdigest()
    assert sha256_file(path) == digest
    assert sha256_matches(digest, digest) and sha256_matches(digest, digest[:8].upper())
    assert not sha256_matches(digest, "0" * 64)
    with pytest.raises(ValueError, match="8 to 64 hex digits"):
        sha256_matches(digest, digest[:7])


def test_download_success_from_a_file_url(tmp_path):
    payload = b"official bytes"
    src = tmp_path / "served" / "data.gz"
    src.parent.mkdir()
    src.write_bytes(payload)
    dest = tmp_path / "cache" / "sub" / "data.gz"
    assert download(src.as_uri(), dest, hashlib.sha256(payload).hexdigest()) == dest
    assert dest.read_bytes() == payload
    assert sorted(p.name for p in dest.parent.iterdir()) == ["data.gz"]  # no temporary file left


def test_checksum_mismatch_keeps_nothing_and_names_the_fix(tmp_path):
    src = tmp_path / "tampered.gz"
    src.write_bytes(b"tampered")
    dest = tmp_path / "cache" / "x.gz"
    with pytest.raises(ChecksumError, match="SHA-256 .* expected 00000000.*copy it to") as info:
        download(src.as_uri(), dest, "0" * 64)
    assert isinstance(info.value, ValueError)
    assert list(dest.parent.iterdir()) == []  # neither x.gz nor a partial file


def test_an_existing_file_survives_a_bad_download(tmp_path):
    dest = tmp_path / "x.gz"
    dest.write_bytes(b"old")
    src = tmp_path / "new.gz"
    src.write_bytes(b"new")
    with pytest.raises(ChecksumError):
        download(src.as_uri(), dest, "0" * 64)
    assert dest.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["new.gz", "x.gz"]


def test_offline_error_names_the_fix_and_keeps_nothing(tmp_path):
    def offline(url, timeout):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    dest = tmp_path / "cache" / "w.pth"
    with pytest.raises(RuntimeError, match=r"the weights could not be downloaded from https://x/w\.pth .*"
                                           r"name resolution.*; pass --weights PATH"):
        download("https://x/w.pth", dest, "a" * 64, what="the weights", fix="pass --weights PATH", opener=offline)
    assert list(dest.parent.iterdir()) == []


def test_a_truncated_response_is_an_offline_error(tmp_path):
    class Truncated(io.BytesIO):
        def read(self, *args):
            import http.client

            raise http.client.IncompleteRead(b"part")

        def __enter__(self):
            return self

    dest = tmp_path / "w.pth"
    with pytest.raises(RuntimeError, match="could not be downloaded"):
        download("https://x/w.pth", dest, "a" * 64, opener=lambda url, timeout: Truncated())
    assert list(Path(tmp_path).iterdir()) == []


def test_a_malformed_checksum_is_refused_before_fetching(tmp_path):
    def never(url, timeout):
        raise AssertionError("fetched")

    with pytest.raises(ValueError, match="8 to 64 hex digits"):
        download("https://x/w.pth", tmp_path / "w.pth", "", opener=never)
