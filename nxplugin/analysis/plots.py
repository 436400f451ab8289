"""Figures of spectra: mean with its standard-error band, per-conformer panels, harmonic sticks.

Plotting only; the numbers come from :mod:`nxplugin.analysis.spectra`. Figures are built with
``matplotlib.figure.Figure`` (no pyplot state, Agg canvas), so this works without a display.
Units: wavenumber in cm^-1; IR in km mol^-1 per cm^-1, Raman activity in Angstrom^4 amu^-1 per cm^-1,
harmonic sticks in km/mol.
"""
import textwrap

import numpy as np

UNITS = {
    "intensity": "IR absorption (km mol$^{-1}$ / cm$^{-1}$)",
    "activity": "Raman activity (Å$^4$ amu$^{-1}$ / cm$^{-1}$)",
}
COLORS = {"total": "black", "trans": "tab:blue", "gauche": "tab:orange",
          "isotropic": "tab:green", "anisotropic": "tab:purple"}


#: harmonic sticks: told apart by line style and marker as well as colour
STICK_STYLES = {"trans": ("solid", "o"), "gauche": ("dashed", "^")}


def auto_range(spectrum, name, sticks=None, *, fraction=0.05, margin=1.1):
    """(0, upper) in cm^-1 covering where the spectrum has intensity.

    ``upper`` is ``margin`` times the highest wavenumber where the curve exceeds ``fraction`` of its
    maximum (the flat noise floor of the high-frequency tail stays below that), extended to cover
    all sticks, rounded up to 100 cm^-1 and at most the last wavenumber of the spectrum.
    """
    values = np.nan_to_num(spectrum.mean[name])
    above = spectrum.wavenumber[values > fraction * values.max()]
    upper = above.max() if len(above) else spectrum.wavenumber[-1]
    for wavenumber, _ in (sticks or {}).values():
        if len(wavenumber):
            upper = max(upper, np.max(wavenumber))
    return 0.0, min(float(np.ceil(upper * margin / 100) * 100), float(spectrum.wavenumber[-1]))


def _draw(ax, spectrum, name, label, color):
    mean, stderr = spectrum.mean[name], spectrum.stderr[name]
    ax.plot(spectrum.wavenumber, mean, color=color, lw=1.2, label=label, zorder=3)
    if np.all(np.isfinite(stderr)):
        what = f"{spectrum.n_samples} samples" if spectrum.n_samples > 1 else \
            "from the populations only: a conformer has 1 sample"    # a mixture (analysis.mixture)
        ax.fill_between(spectrum.wavenumber, mean - stderr, mean + stderr, color=color, alpha=0.3, lw=0,
                        label=f"± standard error ({what})", zorder=2)
    else:   # an empty legend entry that says why there is no band
        ax.plot([], [], " ", label=f"no error band: {spectrum.n_samples} sample")


def _draw_sticks(ax, sticks, names, top):
    """Sticks on a second y axis (0..top km/mol) drawn behind the curve, thin and translucent."""
    twin = ax.twinx()
    for name in names:
        if name in sticks:
            wavenumber, intensity = sticks[name]
            style, marker = STICK_STYLES.get(name, ("dotted", "s"))
            color = COLORS.get(name, "tab:red")
            twin.vlines(wavenumber, 0, intensity, color=color, lw=1.0, alpha=0.6, linestyles=style)
            twin.plot(wavenumber, intensity, ls="none", marker=marker, ms=4, mfc="none", color=color,
                      alpha=0.8)
            twin.plot([], [], color=color, ls=style, marker=marker, mfc="none", lw=1.0,
                      label=f"harmonic {name} (right axis)")
    twin.set_ylabel("harmonic intensity (km/mol)")
    twin.set_ylim(0, top)
    ax.set_zorder(twin.get_zorder() + 1)     # the MD curve above the sticks
    ax.patch.set_visible(False)
    return twin


def plot_spectrum(spectrum, *, conformer_spectra=None, harmonic=None, wavenumber_range=None, title=None,
                  notes=None, path=None):
    """Draw a spectrum, optionally with per-conformer panels and harmonic sticks.

    All panels share the x range and the y scale (stated in the figure), so heights compare across
    panels; a panel without an error band (a single sample) says so in its legend.

    Parameters
    ----------
    spectrum : nxplugin.analysis.spectra.Spectrum
        IR (curve "intensity") or Raman (curves "activity", "isotropic", "anisotropic").
    conformer_spectra : dict of str to Spectrum, optional
        One panel each, below the total.
    harmonic : dict of str to (wavenumber, intensity), optional
        Sticks by conformer in cm^-1 and km/mol (:func:`nxplugin.analysis.timeseries.read_harmonic_csv`), drawn on a
        second y axis: all on the total panel, each conformer's on its panel.
    wavenumber_range : (float, float), optional, cm^-1
        Default: :func:`auto_range`.
    title : str, optional
    notes : dict of str to str, optional
        A short note per conformer (e.g. a shortened depth), in its panel's legend, or in the total
        panel's when the conformer has no panel.
    path : str, optional
        Write the figure there (format from the extension).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    name = "intensity" if "intensity" in spectrum.mean else "activity"
    conformer_spectra = conformer_spectra or {}
    harmonic = harmonic or {}
    notes = notes or {}
    panels = 1 + len(conformer_spectra)
    figure = Figure(figsize=(8, 3.2 * panels), layout="constrained")
    axes = figure.subplots(panels, 1, sharex=True, squeeze=False)[:, 0]
    low, high = wavenumber_range or auto_range(spectrum, name, harmonic)
    _draw(axes[0], spectrum, name, "MD, all frames" + (" (total)" if name == "activity" else ""),
          COLORS["total"])
    if name == "activity":
        for part in ("isotropic", "anisotropic"):
            axes[0].plot(spectrum.wavenumber, spectrum.mean[part], color=COLORS[part], lw=1.2, ls="--",
                         label=f"{part} part")
    rows = [(axes[0], spectrum, list(harmonic), [n for c, n in notes.items() if c not in conformer_spectra])]
    for ax, (conformer, part) in zip(axes[1:], conformer_spectra.items()):
        _draw(ax, part, name, f"MD, {conformer} segments", COLORS.get(conformer, "tab:gray"))
        rows.append((ax, part, [conformer], [notes[conformer]] if conformer in notes else []))
    tops = []
    for _, part, _, _ in rows:
        inside = (part.wavenumber >= low) & (part.wavenumber <= high)
        tops.append(np.nanmax((part.mean[name] + np.nan_to_num(part.stderr[name]))[inside]) if inside.any() else 0)
    top = 1.1 * max(tops) if max(tops) > 0 else 1
    heights = [np.max(i) for w, i in harmonic.values() if len(i)]
    stick_top = 1.15 * max(heights) if heights and max(heights) > 0 else 1
    for ax, part, stick_names, panel_notes in rows:
        ax.set_xlim(low, high)
        ax.set_ylim(0, top)
        ax.set_ylabel(UNITS[name])
        ax.grid(alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        if harmonic and any(n in harmonic for n in stick_names):
            twin = _draw_sticks(ax, harmonic, stick_names, stick_top)
            more = twin.get_legend_handles_labels()
            handles, labels = handles + more[0], labels + more[1]
        for note in panel_notes:            # notes as legend rows: laid out with it, never over it
            handles.append(ax.plot([], [], " ")[0])
            labels.append(textwrap.fill("note: " + note, 48))
        ax.legend(handles, labels, loc="best", fontsize="small", framealpha=0.9)
    axes[-1].set_xlabel("wavenumber (cm$^{-1}$)")
    if title:
        axes[0].set_title(title, fontsize="medium")
    if panels > 1:
        figure.suptitle("all panels share the same y scales", fontsize="small", x=0.99, ha="right")
    if path is not None:
        figure.savefig(path, dpi=120)
    return figure
