"""Classical and TRPMD IR spectra of this example side by side (spectrum-classical.csv, spectrum-trpmd.csv),
and where each C-H stretch band (2500-3300 cm^-1) has its maximum."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

runs = {"classical (1 bead)": "spectrum-classical.csv", "TRPMD (8 beads, centroid dipole)": "spectrum-trpmd.csv"}
ranges = [(0, 1600), (2500, 3300)]
figure, axes = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [3, 1]})
for label, path in runs.items():
    table = np.loadtxt(path, delimiter=",", skiprows=1)
    for axis, (low, high) in zip(axes, ranges):
        keep = (table[:, 0] >= low) & (table[:, 0] <= high)
        if (low, high) == ranges[1]:
            print(f"{label}: C-H stretch band maximum at {table[keep, 0][np.argmax(table[keep, 1])]:.0f} cm^-1")
        axis.plot(table[keep, 0], table[keep, 1], label=label, lw=1)
        axis.fill_between(table[keep, 0], table[keep, 1] - table[keep, 2], table[keep, 1] + table[keep, 2],
                          alpha=0.3, lw=0)
for axis in axes:
    axis.set_xlabel("wavenumber / cm$^{-1}$")
axes[0].set_ylabel("IR absorption / km mol$^{-1}$ cm")
axes[0].legend()
figure.suptitle("DCE at 300 K through i-PI, shipped model, harmonic quantum correction")
figure.tight_layout()
figure.savefig("spectra.png", dpi=120)
print("wrote spectra.png")
