"""Audio: WAV round trips, clip fitting and resampling, audio folders, phase shuffle, WaveGAN's shapes, a tiny
training run, and the espeak-ng spoken digits."""

from __future__ import annotations

import math
import shutil
import warnings

import numpy as np
import pytest
import torch

from ganforge.data.audio import (CLIP_SAMPLES, SkippedAudioWarning, fit_clip, is_audio_folder, load_audio_folder,
                                 read_audio, read_wav_int16, resample, spectrogram_images, wav_bytes, write_wav)
from ganforge.nn.wavegan import WaveGANDiscriminator, WaveGANGenerator, phase_shuffle
from ganforge.train import build_run

from .conftest import tiny_config


def _sine(freq: float, rate: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_wav_round_trip_is_bit_exact(tmp_path):
    pcm = np.random.default_rng(0).integers(-32768, 32768, 5000).astype(np.int16)
    path = write_wav(tmp_path / "a.wav", pcm, 16000)
    back, rate = read_wav_int16(path)
    assert rate == 16000 and back.dtype == np.int16 and np.array_equal(back, pcm)
    # floats go through round(32767 v), clipped to [-1, 1]
    x = np.array([0.0, 0.5, -0.5, 1.0, -1.0, 2.0], dtype=np.float32)
    back, _ = read_wav_int16(write_wav(tmp_path / "b.wav", x, 8000))
    assert back.tolist() == [0, 16384, -16384, 32767, -32767, 32767]
    # soundfile reads the same bytes as int16 / 32768
    f, rate = read_audio(wav_bytes(pcm, 16000))
    np.testing.assert_array_equal(f[:, 0], pcm.astype(np.float32) / 32768.0)


def test_fit_clip_centres_pads_and_cuts():
    x = np.zeros(100, dtype=np.float32)
    x[40:50] = 1.0  # the sound: 10 samples
    out = fit_clip(x, 30)
    assert out.shape == (30,) and out[10:20].tolist() == [1.0] * 10 and out[:10].sum() == 0 and out[20:].sum() == 0
    long = np.arange(1, 101, dtype=np.float32)  # all sound, longer than the clip: the middle
    np.testing.assert_array_equal(fit_clip(long, 10), long[45:55])
    assert not fit_clip(np.zeros(50, np.float32), 20).any()


def test_resampling_keeps_the_pitch():
    y = resample(_sine(440.0, 22050, 1.0), 22050, 16000)
    assert len(y) == 16000
    spectrum = np.abs(np.fft.rfft(y))
    assert np.argmax(spectrum) * 16000 / len(y) == pytest.approx(440.0, abs=1.5)


def test_audio_folder_labels_resamples_and_skips_corrupt_files(tmp_path):
    import soundfile as sf

    for cls, freq in (("high", 1000.0), ("low", 200.0)):
        (tmp_path / cls).mkdir()
        for i in range(3):
            stereo = np.stack([_sine(freq, 22050, 0.3), _sine(freq, 22050, 0.3)], 1)
            sf.write(tmp_path / cls / f"{i}.flac" if i == 2 else tmp_path / cls / f"{i}.wav", stereo, 22050)
    (tmp_path / "low" / "broken.wav").write_bytes(b"RIFF0000WAVEnot really")
    assert is_audio_folder(tmp_path)
    with pytest.warns(SkippedAudioWarning, match="broken.wav"):
        data = load_audio_folder(tmp_path, length=8192)
    assert data.spec.kind == "audio" and data.spec.shape == (1, 8192) and data.spec.sample_rate == 16000
    assert data.spec.class_names == ("high", "low") and data.y.tolist() == [0, 0, 0, 1, 1, 1]
    assert data.x.dtype == torch.int16 and len(data.skipped) == 1
    x = data.to_float(data.x)
    assert float(x.abs().max()) == pytest.approx(0.5, abs=0.02)
    # 0.3 s of sound centred in 8,192 samples (0.512 s)
    sound = np.flatnonzero(np.abs(x[0, 0].numpy()) > 0.01)
    assert sound[0] == pytest.approx((8192 - 4800) / 2, abs=60)
    spec = spectrogram_images(x)
    assert spec.shape[:2] == (6, 1) and float(spec.min()) >= -1 and float(spec.max()) <= 1
    (tmp_path / "high" / "pic.png").write_bytes(b"")
    assert not is_audio_folder(tmp_path)


def test_phase_shuffle_shifts_each_sample_with_reflection():
    x = torch.arange(2 * 3 * 8, dtype=torch.float32).view(2, 3, 8)
    g = torch.Generator().manual_seed(3)
    out = phase_shuffle(x, 2, generator=g)
    k = torch.randint(-2, 3, (2,), generator=torch.Generator().manual_seed(3))
    assert out.shape == x.shape
    for i in range(2):
        for t in range(8):
            src = t - int(k[i])
            src = -src if src < 0 else (2 * 7 - src if src > 7 else src)  # reflection about the edge samples
            torch.testing.assert_close(out[i, :, t], x[i, :, src])
    assert phase_shuffle(x, 0) is x


def test_wavegan_shapes():
    G, D = WaveGANGenerator(16, CLIP_SAMPLES, width=2), WaveGANDiscriminator(CLIP_SAMPLES, width=2)
    x = G(torch.randn(3, 16))
    assert x.shape == (3, 1, CLIP_SAMPLES) and float(x.detach().abs().max()) <= 1.0
    assert D(x).shape == (3,)
    with pytest.raises(ValueError, match="multiple of 1024"):
        WaveGANGenerator(16, 16000, width=2)


def test_tiny_wavegan_and_cwavegan_train_and_sample(tmp_path):
    import soundfile as sf

    for cls, freq in (("a", 300.0), ("b", 900.0)):
        (tmp_path / "clips" / cls).mkdir(parents=True)
        for i in range(4):
            sf.write(tmp_path / "clips" / cls / f"{i}.wav", _sine(freq * (1 + 0.05 * i), 16000, 0.05), 16000)
    data = load_audio_folder(tmp_path / "clips", length=1024)
    for family in ("wavegan", "cwavegan"):
        cfg = tiny_config(family, "unused", steps=2, model={"width": 2, "latent_dim": 8, "n_critic": 1},
                          train={"batch_size": 4})
        trainer = build_run(cfg, tmp_path / family, data=data).fit()
        x = trainer.family.sample(4)
        assert x.shape == (4, 1, 1024) and torch.isfinite(x).all()
        assert list((tmp_path / family / "samples").glob("final_*.wav"))


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs Debian's espeak-ng (apt-get install espeak-ng)")
def test_spoken_digits_are_spoken_centred_and_split_by_voice(tmp_path, monkeypatch):
    from ganforge.data import spoken_digits as sd

    plan = sd.plan()
    assert len(plan) == 10 * len(sd.ACCENTS) * len(sd.VARIANTS) * sd.REPEATS == 3600
    train_voices = {r["voice"] for r in plan if not r["test"]}
    test_voices = {r["voice"] for r in plan if r["test"]}
    assert test_voices and not train_voices & test_voices
    clip = sd.speak(plan[7 * 360], 7 * 360)  # a "seven"
    assert clip.shape == (CLIP_SAMPLES,) and clip.dtype == np.int16
    loud = np.flatnonzero(np.abs(clip) > 0.05 * 32767)
    assert 0.8 * 32767 * 0.5 <= np.abs(clip).max() <= 32767 and len(loud) > 1000
    middle = (loud[0] + loud[-1]) / 2
    assert abs(middle - CLIP_SAMPLES / 2) < 0.1 * CLIP_SAMPLES  # centred
    assert np.array_equal(clip, sd.speak(plan[7 * 360], 7 * 360))  # the same every time
    # a small build through the cache: 10 digits x 2 voices
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path))
    monkeypatch.setattr(sd, "ACCENTS", ("en-us",))
    monkeypatch.setattr(sd, "VARIANTS", ("m1", "m4"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train = sd.load_spoken_digits(split="train", repeats=1)
    test = sd.load_spoken_digits(split="test", repeats=1)
    assert len(train) == len(test) == 10 and train.y.tolist() == list(range(10))
    assert train.spec.kind == "audio" and train.spec.class_names[7] == "seven"


def test_api_and_playground_answer_wav_and_play_it(tmp_path):
    """`ganforge serve` on an audio model: /v1/generate answers WAV (the default format) and JSON with base64
    clips; the playground plays a generated clip in headless Chromium with no page errors."""
    import base64
    import io

    import soundfile as sf

    from .browser import wait_until
    from .test_serve_http import Server, _chromium, open_playground

    (tmp_path / "clips").mkdir()
    for i in range(4):
        sf.write(tmp_path / "clips" / f"{i}.wav", _sine(300.0 * (i + 1), 16000, 0.05), 16000)
    data = load_audio_folder(tmp_path / "clips", length=1024)
    build_run(tiny_config("wavegan", "unused", steps=2, model={"n_critic": 1}, train={"batch_size": 4}),
              tmp_path / "run", data=data).fit()
    server = Server(tmp_path / "run", tmp_path / "server.log")
    try:
        info = server.get("/v1/info").json()
        assert info["kind"] == "audio" and info["output"] == "audio" and info["sample_rate"] == 16000
        r = server.post("/v1/generate", {"n": 2, "seed": 3})
        assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
        pcm, rate = sf.read(io.BytesIO(r.content), dtype="int16")
        assert rate == 16000 and len(pcm) == 2 * 1024 + 4000  # two clips, 0.25 s of silence between
        one = server.post("/v1/generate", {"n": 1, "seed": 3, "format": "json"}).json()
        clip, _ = sf.read(io.BytesIO(base64.b64decode(one["clips"][0])), dtype="int16")
        assert np.array_equal(clip, pcm[:1024])  # the same seed, the same first clip
        bad = server.post("/v1/generate", {"format": "png"})
        assert bad.status_code == 422 and "makes audio" in bad.json()["detail"]
        chromium = _chromium()
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser, page, errors = open_playground(p, chromium, server.url,
                                                    ("--autoplay-policy=no-user-gesture-required",))
            assert page.is_visible("#player") and not page.is_visible("#out")
            wav = base64.b64decode(page.evaluate("window.playground.lastWav"))
            got, _ = sf.read(io.BytesIO(wav), dtype="int16")
            assert len(got) == 1024
            page.evaluate("() => { document.getElementById('player').play().catch(() => {}); return true; }")
            wait_until(page, "document.getElementById('player').currentTime > 0 || "
                             "document.getElementById('player').ended", timeout=20)
            browser.close()
        assert errors == []
    finally:
        server.stop()


def test_griffin_lim_recovers_a_clip_from_its_magnitude():
    """Spectral convergence || |S| - |STFT(x)| || / || |S| || of 32 fast Griffin-Lim iterations on a voiced, gliding
    clip (harmonics of a 120-240 Hz glide under a syllable envelope): 0.070 here, under 0.1 (documented in
    families/specgan.py), and far below a random-phase start."""
    from ganforge.data.audio import HOP, N_FFT, griffin_lim, spectral_convergence

    t = np.arange(16384) / 16000
    f0 = 120 + 120 * t / t[-1]
    phase = 2 * np.pi * np.cumsum(f0) / 16000
    x = sum(np.sin(k * phase) / k for k in range(1, 12)) * np.sin(np.pi * t / t[-1]) ** 2
    x = torch.tensor(0.3 * x / np.abs(x).max(), dtype=torch.float32)[None]
    mag = torch.stft(x, N_FFT, HOP, window=torch.hann_window(N_FFT), center=True, return_complex=True).abs()
    start = spectral_convergence(mag, griffin_lim(mag, n_iter=1, momentum=0.0))
    sc = spectral_convergence(mag, griffin_lim(mag, n_iter=32, length=16384))
    assert sc < 0.1 and sc < 0.5 * start, (sc, start)


def test_tiny_specgan_trains_and_samples_audio(tmp_path):
    import soundfile as sf

    (tmp_path / "clips").mkdir()
    for i in range(4):
        sf.write(tmp_path / "clips" / f"{i}.wav", _sine(300.0 * (i + 1), 16000, 0.05), 16000)
    data = load_audio_folder(tmp_path / "clips", length=1024)
    trainer = build_run(tiny_config("specgan", "unused", steps=2, model={"n_critic": 1, "griffin_lim_iters": 2},
                                    train={"batch_size": 4}), tmp_path / "run", data=data).fit()
    fam = trainer.family
    assert fam.G.bin_std.min() > 0 and not torch.equal(fam.G.bin_mean, torch.zeros_like(fam.G.bin_mean))
    x = fam.sample(4)
    assert x.shape == (4, 1, 1024) and torch.isfinite(x).all() and float(x.abs().max()) <= 1.0
    # encode -> magnitude puts the spectrogram back where the STFT had it
    real = data.to_float(data.x[:2])
    from ganforge.data.audio import log_spectrogram

    back = fam.G.magnitude(fam.G.encode(real)).log()[:, :128, :8]
    want = log_spectrogram(real)[:, :128, :8]
    inside = (want - fam.G.bin_mean[:, None]).abs() < 3 * fam.G.bin_std[:, None] * 0.999  # not clipped at 3 std
    torch.testing.assert_close(back[inside], want[inside], atol=1e-3, rtol=1e-4)
    from ganforge.artifacts import Sampler
    from ganforge.artifacts.onnx import ExportError, export_onnx

    with pytest.raises(ExportError, match="Griffin-Lim"):
        export_onnx(Sampler.from_checkpoint(tmp_path / "run"), tmp_path / "m.onnx")


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs Debian's espeak-ng (apt-get install espeak-ng)")
def test_speech_extractor_names_the_held_out_voices_digits(monkeypatch, tmp_path):
    """The shipped `speech` classifier on clips of a held-out voice (never trained on): every digit right; its
    features are 128-d; images are refused with a message."""
    from ganforge.data import spoken_digits as sd
    from ganforge.metrics.features import load

    ext = load("speech")
    assert ext.audio and ext.n_classes == 10 and ext.dim == 128
    rows = [(i, r) for i, r in enumerate(sd.plan()) if r["voice"] == "en-gb+f3" and r["repeat"] == 0]
    x = torch.tensor(np.stack([sd.speak(r, i) for i, r in rows]), dtype=torch.float32)[:, None] / 32767.0
    assert ext.logits(x).argmax(1).tolist() == [r["digit"] for _, r in rows]
    assert ext.features(x).shape == (10, 128)
    with pytest.raises(ValueError, match="mono float clips"):
        ext.features(torch.zeros(2, 1, 28, 28))


def test_audio_trains_only_audio_families_and_they_train_only_on_audio(tmp_path):
    import soundfile as sf

    (tmp_path / "clips").mkdir()
    for i in range(2):
        sf.write(tmp_path / "clips" / f"{i}.wav", _sine(440.0, 16000, 0.05), 16000)
    clips = load_audio_folder(tmp_path / "clips", length=1024)
    with pytest.raises(ValueError, match="holds audio clips: dcgan does not train on audio; use --family"):
        build_run(tiny_config("dcgan", "unused", steps=1), tmp_path / "a", data=clips)
    with pytest.raises(ValueError, match="wavegan generates audio .* give --data audio"):
        build_run(tiny_config("wavegan", "builtin:digits", steps=1), tmp_path / "b")


def test_cwavegan_aux_class_term_adds_the_classifiers_cross_entropy():
    """aux_weight w adds w x CE(D's classifier on the real clips' features, their labels) to D's loss and w x CE(on
    the fakes, the labels they were drawn with) to G's, on top of the projection D's loss (same weights, same RNG)."""
    import torch.nn.functional as F

    from ganforge.data.spec import Batch, DataSpec
    from ganforge.families import build_family
    from ganforge.families.phases import StepContext

    spec = DataSpec("audio", (1, 1024), n_classes=3, name="toy")
    opts = {"width": 2, "latent_dim": 8, "loss": "hinge", "phase_shuffle": 0}
    torch.manual_seed(0)
    plain = build_family("cwavegan", opts, spec)
    aux = build_family("cwavegan", {**opts, "aux_weight": 0.5}, spec)
    aux.G.load_state_dict(plain.G.state_dict())  # the same G and D; aux's classifier head is its own
    missing, unexpected = aux.D.load_state_dict(plain.D.state_dict(), strict=False)
    assert sorted(missing) == ["classifier.bias", "classifier.weight"] and not unexpected
    batch = Batch(torch.rand(4, 1, 1024) * 2 - 1, torch.tensor([0, 1, 2, 1]))
    for phase in ("d", "g"):
        torch.manual_seed(5)
        base = plain.loss(phase, batch, StepContext(0, (phase,))).loss
        torch.manual_seed(5)
        out = aux.loss(phase, batch, StepContext(0, (phase,)))
        torch.manual_seed(5)
        x, y = (batch.x, batch.y) if phase == "d" else aux.generate(4)
        _, feats = aux.D.base.forward_with_features(x)
        ce = F.cross_entropy(aux.D.classifier(feats), y)
        torch.testing.assert_close(out.loss, base + 0.5 * ce, rtol=1e-5, atol=1e-5)
        assert ("d/cls" if phase == "d" else "g/cls") in out.logs
    with pytest.raises(ValueError, match="aux_weight"):
        build_family("cwavegan", {**opts, "aux_weight": -1.0}, spec)


def test_spectrogram_branch_reads_the_log_spectrogram_and_passes_gradients_to_the_clip():
    """The branch's input image is the standardised log(|STFT| + floor): for a tone on a bin's centre frequency,
    amplitude A, the interior frames' |S| at that bin is A x sum(Hann) / 2 = A n_fft / 4 (closed form); its stack
    shrinks the grid to at most 4 x 4 and out_dim is the flattened size; d(output)/d(clip) reaches every sample, so
    G is told about its spectrum; two tones give different outputs."""
    from ganforge.nn.wavegan import SpectrogramBranch, WaveSpecDiscriminator

    torch.manual_seed(0)
    b = SpectrogramBranch(4096, width=2, n_fft=64)
    t = torch.arange(4096) / 16000
    amp = 0.5
    x = torch.stack([amp * torch.sin(2 * torch.pi * 1000 * t), amp * torch.sin(2 * torch.pi * 3000 * t)])[:, None]
    img = b.image(x)
    assert img.shape == (2, 1, 33, 4096 // 32 + 1)
    centre = 1000 * 64 // 16000  # bin 4
    expected = (math.log(amp * 64 / 4 + b.floor) - b.LOG_MEAN) / b.LOG_STD
    torch.testing.assert_close(img[0, 0, centre, 2:-2], torch.full((4096 // 32 - 3,), expected), rtol=0, atol=1e-4)
    assert int(img[0, 0].mean(1).argmax()) == centre
    xg = x.clone().requires_grad_()
    out = b(xg)
    grid = b.net(img).shape[-2:]
    assert out.shape == (2, b.out_dim) and max(grid) <= 4 and b.out_dim == b.net[-2].out_channels * grid[0] * grid[1]
    assert not torch.allclose(out[0], out[1])
    out.sum().backward()
    assert bool((xg.grad[:, 0, 64:-64].abs() > 0).all())
    d = WaveSpecDiscriminator(4096, width=2, shuffle=0, spec_width=2, n_fft=64)
    logit, feats = d.forward_with_features(x)
    assert logit.shape == (2,) and feats.shape == (2, d.fc.in_features)
    with pytest.raises(ValueError, match="power-of-two"):
        SpectrogramBranch(4096, 2, n_fft=100)
    with pytest.raises(ValueError, match="power-of-two"):
        SpectrogramBranch(1024, 2, n_fft=2048)


@pytest.mark.parametrize("length", [1024, 4096, 16384])
@pytest.mark.parametrize("n_fft", [16, 64, 256, 1024])
def test_spectrogram_branch_fits_every_clip_length_and_stft_size(length, n_fft):
    """However long the time axis is against the frequency axis, the stack ends on a grid of at most 4 x 4 (an
    axis already short stops halving) and out_dim matches what comes out."""
    from ganforge.nn.wavegan import SpectrogramBranch

    b = SpectrogramBranch(length, width=1, n_fft=n_fft)
    x = torch.randn(2, 1, length)
    h = b.net(b.image(x))
    assert max(h.shape[-2:]) <= 4 and b(x).shape == (2, b.out_dim) and b.out_dim == h[0].numel()


@pytest.mark.parametrize("opts, phase", [({"loss": "wgan-gp"}, "d"), ({"loss": "ns", "r1_weight": 1.0, "r1_every": 2}, "d_reg")])
def test_wavegan_penalties_pass_through_the_spectrogram_view(opts, phase):
    """WGAN-GP's and R1's double backward go through the STFT, on clips with digital silence (|S| = 0 exactly): the
    loss is finite and every D parameter gets a finite gradient (as DDP needs). Lazy R1's phase is the penalty alone,
    so the spectrogram stack's gradient there comes from the double backward through the STFT."""
    from ganforge.data.spec import Batch, DataSpec
    from ganforge.families import build_family
    from ganforge.families.phases import StepContext

    spec = DataSpec("audio", (1, 1024), name="toy")
    torch.manual_seed(0)
    fam = build_family("wavegan", {"width": 2, "latent_dim": 8, "spec_width": 2, "spec_n_fft": 64, **opts}, spec)
    x = torch.rand(4, 1, 1024) * 2 - 1
    x[:, :, :300] = 0.0
    out = fam.loss(phase, Batch(x), StepContext(0, (phase,)))
    assert torch.isfinite(out.loss) and float(out.loss.detach()) != 0.0
    out.loss.backward()
    grads = dict(fam.D.named_parameters())
    assert all(p.grad is not None and bool(torch.isfinite(p.grad).all()) for p in grads.values())
    assert grads["spec.net.0.weight"].grad.abs().sum() > 0


def test_cwavegan_with_a_spectrogram_view_trains_and_both_views_learn(tmp_path):
    """model.spec_width > 0: cwavegan's projection D reads the waveform D's and the spectrogram branch's features;
    one D step moves both views' weights, and the sampler (G alone) is unchanged in shape. Bad STFT sizes are
    refused by name."""
    from ganforge.data.spec import Batch, DataSpec
    from ganforge.families import build_family
    from ganforge.families.phases import StepContext
    from ganforge.nn.wavegan import WaveSpecDiscriminator

    spec = DataSpec("audio", (1, 1024), n_classes=3, name="toy")
    torch.manual_seed(0)
    fam = build_family("cwavegan", {"width": 2, "latent_dim": 8, "loss": "ns", "phase_shuffle": 1,
                                    "spec_width": 2, "spec_n_fft": 64, "aux_weight": 1.0}, spec)
    assert isinstance(fam.D.base, WaveSpecDiscriminator)
    batch = Batch(torch.rand(4, 1, 1024) * 2 - 1, torch.tensor([0, 1, 2, 1]))
    fam.loss("d", batch, StepContext(0, ("d",))).loss.backward()
    grads = {n: p.grad for n, p in fam.D.named_parameters()}
    assert grads["base.spec.net.0.weight"].abs().sum() > 0 and grads["base.wave.net.0.weight"].abs().sum() > 0
    assert grads["classifier.weight"].abs().sum() > 0 and grads["embed.weight"].abs().sum() > 0
    assert fam.generate(4)[0].shape == (4, 1, 1024)
    with pytest.raises(ValueError, match="spec_width"):
        build_family("cwavegan", {"width": 2, "spec_width": -1}, spec)
    for bad in (100, 2048):  # not a power of two; half of it not below the 1,024-sample clip
        with pytest.raises(ValueError, match="model.spec_n_fft"):
            build_family("wavegan", {"width": 2, "spec_width": 2, "spec_n_fft": bad}, spec)


def test_cwavegan_mismatch_term_is_the_matching_aware_loss():
    """mismatch_weight w: D's loss is real(s_r) + (1 - w) fake(s_f) + w fake(s_w) (Reed et al. 2016's matching-aware
    D), s_w = D(real clip, a wrong label); with the ns loss fake(s) = mean softplus(s), real(s) = mean softplus(-s).
    The wrong labels are never the right ones and reach every other class."""
    import torch.nn.functional as F

    from ganforge.data.spec import Batch, DataSpec
    from ganforge.families import build_family
    from ganforge.families.phases import StepContext

    spec = DataSpec("audio", (1, 1024), n_classes=3, name="toy")
    torch.manual_seed(0)
    fam = build_family("cwavegan", {"width": 2, "latent_dim": 8, "loss": "ns", "phase_shuffle": 0,
                                    "mismatch_weight": 0.25}, spec)
    y = torch.tensor([0, 1, 2, 1] * 50)
    wrong = fam.wrong_labels(y)
    assert bool((wrong != y).all()) and {(a, b) for a, b in zip(y.tolist(), wrong.tolist())} == {
        (a, b) for a in range(3) for b in range(3) if a != b}
    fam.wrong_labels = lambda lab: (lab + 1) % 3  # a fixed wrong label for the closed form below
    torch.nn.init.normal_(fam.D.embed.weight, std=1.0)  # labels that move D's logit, so the wrong term is visible
    batch = Batch(torch.rand(4, 1, 1024) * 2 - 1, torch.tensor([0, 1, 2, 1]))
    torch.manual_seed(5)
    out = fam.loss("d", batch, StepContext(0, ("d",)))
    torch.manual_seed(5)
    with torch.no_grad():
        fake, yf = fam.generate(4)
    s_r, s_w, s_f = fam.D(batch.x, batch.y), fam.D(batch.x, (batch.y + 1) % 3), fam.D(fake, yf)
    expected = F.softplus(-s_r).mean() + 0.75 * F.softplus(s_f).mean() + 0.25 * F.softplus(s_w).mean()
    torch.testing.assert_close(out.loss, expected, rtol=1e-5, atol=1e-5)
    without = F.softplus(-s_r).mean() + F.softplus(s_f).mean()
    assert (s_w - s_r).abs().min() > 1e-2 and abs(float((expected - without).detach())) > 1e-3
    torch.testing.assert_close(out.logs["d/adv"], expected.detach(), rtol=1e-5, atol=1e-5)
    assert "d/wrong" in out.logs
    torch.manual_seed(6)
    g_out = fam.loss("g", batch, StepContext(0, ("g",)))
    torch.manual_seed(6)
    fake, yf = fam.generate(4)
    torch.testing.assert_close(g_out.loss, F.softplus(-fam.D(fake, yf)).mean(), rtol=1e-5, atol=1e-5)  # G's: unchanged
    with pytest.raises(ValueError, match="mismatch_weight"):
        build_family("cwavegan", {"width": 2, "mismatch_weight": 1.0}, spec)
    with pytest.raises(ValueError, match="at least 2 classes"):
        build_family("cwavegan", {"width": 2, "mismatch_weight": 0.5}, DataSpec("audio", (1, 1024), n_classes=1))
