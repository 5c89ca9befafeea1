"""PP-HumanSeg v2 portrait lite (PaddleSeg, Apache-2.0): 256x144 RGB in, a two-class softmax out."""

from __future__ import annotations

import numpy as np

from vbg.models import SegmentationModel, register


@register
class PPHumanSegV2(SegmentationModel):
    name = "pphumanseg_v2_portrait_lite_256x144"
    title = "PP-HumanSeg v2 256x144 portrait model"
    aliases = ("pphumanseg",)

    def __init__(self, spec):
        super().__init__(spec)
        self._scale = np.float32(spec.scale / spec.std)
        self._offset = np.float32(spec.mean / spec.std)

    def write_input(self, padded_bgr, tensor):
        # BGR HWC uint8 -> RGB CHW float32, (v/255 - mean)/std, straight into the bound buffer
        np.multiply(padded_bgr.transpose(2, 0, 1)[::-1], self._scale, out=tensor[0], dtype=np.float32)
        np.subtract(tensor, self._offset, out=tensor)

    def person(self, output):
        return output[0, self.spec.person_channel]
