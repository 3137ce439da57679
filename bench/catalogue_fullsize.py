"""Full-size checks of the real Prithvi-EO-2.0 300M and DOFA ViT-B/16 catalogue entries (the tests
use ViT-Tiny-width variants): generated files in the published layout (Prithvi at full width with 2
of its 24 blocks, DOFA complete), loaded through the offline HF cache into the architectures the
entries name, for a 13-band Sentinel-2 scene. About 3 GB of memory; a few minutes on 2 CPU cores.

    .venv/bin/python bench/catalogue_fullsize.py
"""
import io, sys, time, tempfile
from pathlib import Path
import torch, torch.nn.functional as F
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import huggingface_hub.constants as hc, os
from hub_cache import add_file
from test_catalogue import _DofaEmbedRef, _timm_state
from rs_vit.models import catalogue as C
from rs_vit.models.convert import sincos_3d
from rs_vit.models.registry import create_model

cache = Path(tempfile.mkdtemp()) / "hub"
cache.mkdir(parents=True)
os.environ["HF_HUB_OFFLINE"] = "1"; hc.HF_HUB_CACHE = str(cache); hc.HF_HUB_OFFLINE = True

def pth(obj):
    b = io.BytesIO(); torch.save(obj, b); return b.getvalue()

S2 = list(C.S2_L1C)
# -- Prithvi 300M: real width (1024, 16 heads), 2 of the 24 blocks in the file ----------------------
e = C.get_weights("prithvi_eo_v2_300m")
g = torch.Generator().manual_seed(0)
blk = {k: v for k, v in _timm_state("vit_large_patch16_224", 6).items() if k.startswith(("blocks.0.", "blocks.1.", "norm."))}
pub = {f"encoder.{k}": v for k, v in blk.items()}
pub["encoder.patch_embed.proj.weight"] = torch.randn(1024, 6, 1, 16, 16, generator=g) * 0.02
pub["encoder.patch_embed.proj.bias"] = torch.randn(1024, generator=g) * 0.02
pub["encoder.cls_token"] = torch.randn(1, 1, 1024, generator=g) * 0.02
pub["encoder.pos_embed"] = sincos_3d(1024, (4, 14, 14))
pub["decoder.mask_token"] = torch.zeros(1, 1, 512); pub["decoder.decoder_embed.weight"] = torch.randn(512, 1024)
add_file(cache, e.hf_repo, e.hf_filename, pth(pub))
t = time.time()
kw = C.check_model(e, "setr_pup_vit_base", {})
m = create_model("setr_pup_vit_base", in_channels=13, num_classes=2, pretrained="prithvi", band_names=S2, **kw)
dt = time.time() - t
rep = m.rs_vit_init_reports[0]
vit = m.encoder.model
w = vit.patch_embed.proj.weight.detach()
ok_slices = all(torch.equal(w[:, S2.index(b)] * 13 / 6, pub["encoder.patch_embed.proj.weight"][:, i, 0]) or
                torch.allclose(w[:, S2.index(b)], pub["encoder.patch_embed.proj.weight"][:, i, 0] * 6 / 13)
                for i, b in enumerate(e.bands))
print(f"prithvi_eo_v2_300m -> setr_pup_vit_base(encoder {kw['encoder']}, {sum(p.numel() for p in m.parameters())/1e6:.0f} M params): "
      f"build+load {dt:.1f} s; landed {len(rep.loaded)+len(rep.adapted)+len(rep.resampled)}/{rep.n_source}; skipped {len(rep.skipped)}; "
      f"6 HLS kernels on their S2 bands (x 6/13, band_init mean): {ok_slices}; "
      f"pos_embed == 3-D table at t=0: {torch.equal(vit.pos_embed.detach(), pub['encoder.pos_embed'][:, :197])}")
for line in m.rs_vit_init_lines: print("   ", line[:200])
del m, vit, pub
# -- DOFA ViT-B/16 at full size ------------------------------------------------------------------------
e = C.get_weights("dofa_vitb16")
torch.manual_seed(0)
emb = _DofaEmbedRef(768).eval()
vitb = {k: v for k, v in _timm_state("vit_base_patch16_224", 3).items() if not k.startswith("patch_embed.")}
pub = {**vitb, **{f"patch_embed.{k}": v for k, v in emb.state_dict().items()}}
add_file(cache, e.hf_repo, e.hf_filename, pth(pub), revision=e.hf_revision)
t = time.time()
m = create_model("setr_pup_vit_base", in_channels=13, num_classes=2, pretrained="dofa", band_names=S2)
dt = time.time() - t
rep = m.rs_vit_init_reports[0]
proj = m.encoder.model.patch_embed.proj
x = torch.randn(1, 13, 64, 64)
with torch.no_grad():
    want = emb(x, [C.WAVELENGTHS[b] for b in S2])
    got = F.conv2d(F.pad(x, (1, 1, 1, 1)), proj.weight, proj.bias, stride=16)[..., :want.shape[-2], :want.shape[-1]]
print(f"dofa_vitb16 -> setr_pup_vit_base ({sum(p.numel() for p in m.parameters())/1e6:.0f} M params), 13 S2 bands: build+bake+load {dt:.1f} s; "
      f"landed {len(rep.loaded)+len(rep.adapted)+len(rep.resampled)}/{rep.n_source}; skipped {len(rep.skipped)}; "
      f"baked conv vs DOFA's dynamic conv: max abs diff {float((got - want).abs().max()):.2e} (outputs up to {float(want.abs().max()):.2e})")
