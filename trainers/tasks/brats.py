"""`brats`: BraTS glioma segmentation in the per-case layout of BraTS 2021 and later (metrics `dice` = mean
foreground Dice, `dice_NCR`, `dice_ED`, `dice_ET`, `val_loss`).

Reads from `data_root` one folder per case: BraTS 2021 `BraTS2021_00000/BraTS2021_00000_{t1,t1ce,t2,flair,seg}.nii.gz`
(labels 0, 1, 2, 4) or BraTS 2023 `BraTS-GLI-00000-000/BraTS-GLI-00000-000-{t1n,t1c,t2w,t2f,seg}.nii.gz` (labels
0, 1, 2, 3); a folder is a case when its name starts with "BraTS". Four channels in the order T1, T1 contrast, T2,
FLAIR; classes background, NCR (necrotic core, 1), ED (edema, 2), ET (enhancing tumour, 4 in 2021, 3 in 2023).
The volumes are z-scored per channel over the brain (nonzero voxels).

Reading, cache, crops, split and physical spacing (mm; BraTS ships 1 mm isotropic volumes):
`afpe.trainers.tasks.volumes`.
"""

from __future__ import annotations

from pydantic import Field

from afpe.trainers.tasks.base import DataError
from afpe.trainers.tasks.registry import register_task
from afpe.trainers.tasks.volumes import Case, VolumeOptions, VolumeTask, Voxels

#: Per naming (selected by the case folder's prefix): separator, modality suffixes in channel order, label values.
NAMINGS = {
    "BraTS-": ("-", ("t1n", "t1c", "t2w", "t2f"), (0, 1, 2, 3)),
    "BraTS": ("_", ("t1", "t1ce", "t2", "flair"), (0, 1, 2, 4)),
}
CLASSES = ("background", "NCR", "ED", "ET")


class BraTSOptions(VolumeOptions):
    # 64^3 voxels of 1 mm: a 64 mm cube, about a tumour's extent; patch 8^3 gives 8^3 = 512 tokens, a ViT step a CPU
    # takes in about a second at batch 2 (the 240 x 240 x 155 volume would be 7,200 tokens).
    roi: Voxels = Field([64, 64, 64], description="crop size (x, y, z) in voxels after resampling")
    patch: Voxels = Field([8, 8, 8], description="ViT patch size (x, y, z); roi must be a multiple of it")


@register_task
class BraTS(VolumeTask):
    name = "brats"
    Options = BraTSOptions
    class_names = CLASSES
    channels = 4

    def label_values(self, case: Case) -> tuple[int, ...]:
        return _naming(case.name)[2]

    def cases(self) -> list[Case]:
        root = self.require_root()
        folders = sorted(path for path in root.iterdir() if path.is_dir() and path.name.startswith("BraTS"))
        if not folders:
            raise DataError(f"BraTS data_root {root} has no case folder (BraTS2021_00000/, BraTS-GLI-00000-000/, ...)")
        cases = []
        for folder in folders:
            separator, modalities, _ = _naming(folder.name)
            files = [folder / f"{folder.name}{separator}{suffix}.nii.gz" for suffix in (*modalities, "seg")]
            for path in files:
                if not path.is_file():
                    raise DataError(f"BraTS case {folder.name}: {path} not found")
            cases.append(Case(folder.name, tuple(files[:-1]), files[-1]))
        return cases


def _naming(name: str) -> tuple[str, tuple[str, ...], tuple[int, ...]]:
    return next(naming for prefix, naming in NAMINGS.items() if name.startswith(prefix))
