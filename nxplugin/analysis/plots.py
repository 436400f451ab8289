"""Figures of spectra: mean with its standard-error band, per-conformer panels, harmonic sticks.

Plotting only; the numbers come from :mod:`nxplugin.analysis.spectra`. Figures are built with
``matplotlib.figure.Figure`` (no pyplot state, Agg canvas), so this works without a display.
Units: wavenumber in cm^-1; IR in km mol^-1 per cm^-1, Raman activity in Angstrom^4 amu^-1 per cm^-1,
harmonic sticks in km/mol.
"""
import numpy as np

UNITS = {
    "intensity": "IR absorption (km mol$^{-1}$ / cm$^{-1}$)",
    "activity": "Raman activity (Å$^4$ amu$^{-1}$ / cm$^{-1}$)",
}
COLORS = {"total": "black", "trans": "tab:blue", "gauche": "tab:orange",
          "isotropic": "tab:green", "anisotropic": "tab:purple"}


def auto_range(spectrum, name, sticks=None, *, fraction=0.01):
    """(0, upper) in cm^-1: 1.15 times the highest wavenumber where the curve exceeds ``fraction`` of its
    maximum, extended to cover all sticks, rounded up to 100 cm^-1."""
    values = np.nan_to_num(spectrum.mean[name])
    above = spectrum.wavenumber[values > fraction * values.max()]
    upper = above.max() if len(above) else spectrum.wavenumber[-1]
    for wavenumber, _ in (sticks or {}).values():
        if len(wavenumber):
            upper = max(upper, np.max(wavenumber))
    return 0.0, min(float(np.ceil(upper * 1.15 / 100) * 100), float(spectrum.wavenumber[-1]))


def _draw(ax, spectrum, name, label, color):
    mean, stderr = spectrum.mean[name], spectrum.stderr[name]
    ax.plot(spectrum.wavenumber, mean, color=color, lw=1.2, label=label)
    if np.all(np.isfinite(stderr)):
        ax.fill_between(spectrum.wavenumber, mean - stderr, mean + stderr, color=color, alpha=0.3, lw=0,
                        label=f"± standard error ({spectrum.n_samples} samples)")


def _draw_sticks(ax, sticks, names):
    twin = ax.twinx()
    for name in names:
        if name in sticks:
            wavenumber, intensity = sticks[name]
            twin.vlines(wavenumber, 0, intensity, color=COLORS.get(name, "tab:red"), lw=1.5,
                        linestyles="dashed", label=f"harmonic {name}")
    twin.set_ylabel("harmonic intensity (km/mol)")
    heights = [np.max(sticks[n][1]) for n in names if n in sticks and len(sticks[n][1])]
    twin.set_ylim(0, 1.15 * max(heights) if heights and max(heights) > 0 else 1)
    return twin


def plot_spectrum(spectrum, *, conformer_spectra=None, harmonic=None, wavenumber_range=None, title=None,
                  path=None):
    """Draw a spectrum, optionally with per-conformer panels and harmonic sticks.

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
    rows = [(axes[0], spectrum, list(harmonic))]
    for ax, (conformer, part) in zip(axes[1:], conformer_spectra.items()):
        _draw(ax, part, name, f"MD, {conformer} segments", COLORS.get(conformer, "tab:gray"))
        rows.append((ax, part, [conformer]))
    for ax, part, stick_names in rows:
        inside = (part.wavenumber >= low) & (part.wavenumber <= high)
        top = np.nanmax((part.mean[name] + np.nan_to_num(part.stderr[name]))[inside])
        ax.set_xlim(low, high)
        ax.set_ylim(0, 1.1 * top if top > 0 else 1)
        ax.set_ylabel(UNITS[name])
        ax.grid(alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        if harmonic and any(n in harmonic for n in stick_names):
            twin = _draw_sticks(ax, harmonic, stick_names)
            more = twin.get_legend_handles_labels()
            handles, labels = handles + more[0], labels + more[1]
        ax.legend(handles, labels, loc="best", fontsize="small")
    axes[-1].set_xlabel("wavenumber (cm$^{-1}$)")
    if title:
        axes[0].set_title(title)
    if path is not None:
        figure.savefig(path, dpi=120)
    return figure
