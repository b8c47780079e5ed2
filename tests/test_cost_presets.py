"""Preset files: every shipped preset loads and documents its constants; bad files fail with one-line errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cost_models import Preset, list_presets, load_preset
from cost_models.preset import PRESET_DIR, REFERENCE_DIR
from dfs_sim.errors import ConfigError

SHIPPED = ("bitfusion_eyeriss", "bitfusion_stripes", "stripes", "loom", "bitparallel16")


def test_shipped_presets_are_listed():
    assert set(SHIPPED) <= set(list_presets())


@pytest.mark.parametrize("name", list_presets(reference=True))
def test_every_preset_loads_and_every_constant_has_a_source(name):
    preset = load_preset(name)
    assert isinstance(preset, Preset) and preset.name == name
    assert preset.cycles_to_us(preset.freq_mhz * 10) == pytest.approx(10.0)
    assert preset.clock_hz == preset.freq_mhz * 1e6
    path = PRESET_DIR / f"{name}.toml"
    text = (path if path.is_file() else REFERENCE_DIR / f"{name}.toml").read_text()
    for line in text.splitlines():
        if re.match(r"^\s*[a-z_]+\s*=", line) and not line.startswith(
            ("schema_version", "name", "kind", "description")
        ):
            assert "#" in line, f"{name}: constant without a source comment: {line}"


def test_content_hash_is_stable_and_value_sensitive(tmp_path):
    a, b = load_preset("bitfusion_eyeriss"), load_preset("bitfusion_eyeriss")
    assert a.content_hash() == b.content_hash()
    copy = tmp_path / "mine.toml"
    copy.write_text((PRESET_DIR / "bitfusion_eyeriss.toml").read_text())
    assert load_preset(copy).content_hash() == a.content_hash()  # the path is not hashed
    assert a.replace(dram__pj_per_bit=6.0).content_hash() != a.content_hash()


def _write(tmp_path: Path, old: str, new: str) -> Path:
    text = (PRESET_DIR / "stripes.toml").read_text()
    assert old in text
    path = tmp_path / "user.toml"
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize(
    "old, new, key",
    [
        ("lanes = 16", "lanes = 16\nlane = 3", "array.lane"),  # unknown key
        ("lanes = 16", "", "array.lanes"),  # missing key
        ("ibuf_kib = 2048", "ibuf_kib = -2048", "buffers.ibuf_kib"),  # negative size
        ("wbuf_kib = 32768", "wbuf_kib = 0", "buffers.wbuf_kib"),  # zero size
        ('kind = "bitserial"', 'kind = "tpu"', "kind"),  # unknown kind
        ('skip = "alias"', 'skip = "teleport"', "policy.skip"),  # unknown policy
        ("tiles = 16", 'tiles = "16"', "array.tiles"),  # wrong type
        ("schema_version = 1", "schema_version = 9", "schema_version"),
        ("[dram]", "colour = 1\n[dram]", "colour"),  # unknown key in a section table goes to the section
        ("fp_mac_pj = 4.6", "fp_mac_pj = 4.6\nmin_storage_bits = 16", "policy.min_storage_bits"),  # bit-serial
    ],
)
def test_bad_preset_files_raise_one_line_errors_naming_file_and_key(tmp_path, old, new, key):
    path = _write(tmp_path, old, new)
    with pytest.raises(ConfigError) as error:
        load_preset(path)
    message = str(error.value)
    assert "\n" not in message and str(path) in message and key.split(".")[-1] in message


def test_not_toml_and_unknown_name(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("this is = = not toml")
    with pytest.raises(ConfigError, match=r"bad\.toml"):
        load_preset(bad)
    with pytest.raises(ConfigError) as error:
        load_preset("no_such_preset")
    assert all(name in str(error.value) for name in SHIPPED)


def test_user_file_with_own_name(tmp_path):
    path = _write(tmp_path, 'name = "stripes"', 'name = "my_stripes"')
    assert load_preset(str(path)).name == "my_stripes"


def test_sram_prices_follow_buffer_size_by_the_square_root_from_their_anchor(tmp_path):
    preset = load_preset("bitfusion_eyeriss")
    assert preset.energy.sram_scaling == "sqrt" and preset.energy.wbuf_anchor_kib == preset.buffers.wbuf_kib
    assert preset.sram_pj_per_bit("wbuf", "read") == preset.energy.wbuf_read_pj_per_bit  # at the anchor: as given
    larger = preset.replace(buffers__wbuf_kib=4 * preset.buffers.wbuf_kib)
    assert larger.sram_pj_per_bit("wbuf", "read") == pytest.approx(2 * preset.energy.wbuf_read_pj_per_bit)
    assert larger.sram_pj_per_bit("ibuf", "write") == preset.energy.ibuf_write_pj_per_bit  # other buffers unchanged
    fixed = larger.replace(energy__sram_scaling="fixed")
    assert fixed.sram_pj_per_bit("wbuf", "read") == preset.energy.wbuf_read_pj_per_bit
    # Horowitz's anchor pair, 8 KB -> 32 KB: twice the energy per access
    toy = preset.replace(buffers__obuf_kib=32, energy__obuf_anchor_kib=8)
    assert toy.sram_pj_per_bit("obuf", "write") == pytest.approx(2 * preset.energy.obuf_write_pj_per_bit)
    unscaled = tmp_path / "unscaled.toml"  # without sram_scaling: every size priced alike
    unscaled.write_text(re.sub(r"^sram_scaling = .*$", "", (PRESET_DIR / "stripes.toml").read_text(), flags=re.M))
    assert load_preset(unscaled).replace(buffers__wbuf_kib=1).sram_pj_per_bit("wbuf", "read") == (
        load_preset("stripes").energy.wbuf_read_pj_per_bit
    )
    text = (PRESET_DIR / "stripes.toml").read_text().replace("wbuf_anchor_kib = 32768", "wbuf_anchor_kib = 0")
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    with pytest.raises(ConfigError, match=r"bad\.toml.*wbuf_anchor_kib"):
        load_preset(bad)
