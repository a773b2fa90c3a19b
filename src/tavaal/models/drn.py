"""Segmentation task learners: DRN-D-22 (Yu, Koltun and Funkhouser, "Dilated Residual Networks",
CVPR 2017), the paper's choice for Cityscapes, and torchvision's DeepLabV3-MobileNetV3-Large as a
lighter one for CPUs. Both return per-pixel logits at the input's size, the Ranker's taps and a
pooled embedding for Core-set.

DRN-D-22 as that paper's Figure 2 and Table 1 describe it: eight levels with 16, 32, 64, 128, 256,
512, 512, 512 channels; level 1 a 7x7 convolution, levels 1-2 plain 3x3 convolutions (no residual,
the "D" removal of max-pooling gridding), levels 3-6 two basic residual blocks each, strides 2 at
levels 2, 3 and 4 (output stride 8), dilation 2 at level 5 and 4 at level 6, then levels 7 (dilation
2) and 8 (dilation 1) plain 3x3 convolutions without residuals, to remove gridding artefacts. The
classifier is a 1x1 convolution, upsampled bilinearly x8.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tavaal.models.base import TaskLearner, TaskOutput


def _conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    pad = dilation * (k // 2)
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, pad, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual; the first may stride, both share a dilation."""

    def __init__(self, cin: int, cout: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, dilation, dilation=dilation, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.down is None else self.down(x)), inplace=True)


class DRND22(TaskLearner):
    """DRN-D-22 for segmentation; the Ranker taps levels 3-6, Core-set gets level 8 pooled."""

    def __init__(self, num_classes: int, in_channels: int = 3, dropout: float = 0.0):
        super().__init__()
        c = (16, 32, 64, 128, 256, 512, 512, 512)
        self.level1 = _conv_bn(in_channels, c[0], k=7)
        self.level2 = _conv_bn(c[0], c[1], stride=2)
        self.level3 = nn.Sequential(BasicBlock(c[1], c[2], stride=2), BasicBlock(c[2], c[2]))
        self.level4 = nn.Sequential(BasicBlock(c[2], c[3], stride=2), BasicBlock(c[3], c[3]))
        self.level5 = nn.Sequential(BasicBlock(c[3], c[4], dilation=2), BasicBlock(c[4], c[4], dilation=2))
        self.level6 = nn.Sequential(BasicBlock(c[4], c[5], dilation=4), BasicBlock(c[5], c[5], dilation=4))
        self.level7 = _conv_bn(c[5], c[6], dilation=2)
        self.level8 = _conv_bn(c[6], c[7], dilation=1)
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(c[7], num_classes, 1)
        self.feature_dims = [c[2], c[3], c[4], c[5]]
        self.embedding_dim = c[7]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> TaskOutput:
        size = x.shape[-2:]
        h = self.level2(self.level1(x))
        f3 = self.level3(h)
        f4 = self.level4(f3)
        f5 = self.level5(f4)
        f6 = self.level6(f5)
        h = self.level8(self.level7(f6))
        logits = F.interpolate(
            self.classifier(self.dropout(h)), size=size, mode="bilinear", align_corners=False
        )
        emb = torch.flatten(F.adaptive_avg_pool2d(h, 1), 1)
        return logits, emb, [f3, f4, f5, f6]


class DeepLabMobile(TaskLearner):
    """torchvision's DeepLabV3 with a MobileNetV3-Large backbone, randomly initialised; the Ranker
    taps backbone stages at strides 4, 8 and 16 and the ASPP output, which Core-set gets pooled."""

    TAPS = ("backbone.3", "backbone.6", "backbone.12", "classifier.0")

    def __init__(self, num_classes: int, in_channels: int = 3, dropout: float = 0.0):
        super().__init__()
        from torchvision.models.segmentation import deeplabv3_mobilenet_v3_large

        if in_channels != 3:
            raise ValueError("deeplabv3-mobilenet takes RGB images")
        self.net = deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=num_classes)
        self.dropout = nn.Dropout2d(dropout)
        self._store: dict[str, torch.Tensor] = {}
        mods = dict(self.net.named_modules())
        for name in self.TAPS:
            mods[name].register_forward_hook(self._keep(name))
        self.feature_dims = [24, 40, 112, 256]
        self.embedding_dim = 256

    def _keep(self, name: str):
        def hook(_m: nn.Module, _i: tuple, out: torch.Tensor) -> None:
            self._store[name] = out

        return hook

    def forward(self, x: torch.Tensor) -> TaskOutput:
        size = x.shape[-2:]
        self._store.clear()
        feats = self.net.backbone(x)["out"]
        head = self.net.classifier
        aspp = head[0](feats)
        h = head[3](head[2](head[1](aspp)))
        logits = head[4](self.dropout(h))
        logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        taps = [self._store[n] for n in self.TAPS]
        emb = torch.flatten(F.adaptive_avg_pool2d(aspp, 1), 1)
        return logits, emb, taps
