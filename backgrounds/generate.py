"""Makes vbg's default backgrounds: gradients and soft shapes, no photos. Run: python backgrounds/generate.py"""

from pathlib import Path

import cv2
import numpy as np

W, H = 1920, 1080
HERE = Path(__file__).resolve().parent


def gradient(top, bottom, angle=0.0):
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    t = (y / H) * np.cos(angle) + (x / W) * np.sin(angle)
    t = (t - t.min()) / (t.max() - t.min())
    top, bottom = np.array(top, np.float32), np.array(bottom, np.float32)
    return top + (bottom - top) * t[..., None]


def soft_blobs(image, blobs, blur):
    layer = np.zeros_like(image)
    weight = np.zeros(image.shape[:2], np.float32)
    for (cx, cy, r, color) in blobs:
        m = np.zeros(image.shape[:2], np.float32)
        cv2.circle(m, (int(cx * W), int(cy * H)), int(r * H), 1.0, -1, cv2.LINE_AA)
        layer += m[..., None] * np.array(color, np.float32)
        weight += m
    layer = cv2.GaussianBlur(layer, (0, 0), blur)
    weight = cv2.GaussianBlur(weight, (0, 0), blur)[..., None]
    mix = np.clip(weight, 0, 1) * 0.85
    return image * (1 - mix) + (layer / np.maximum(weight, 1e-3)) * mix


def grain(image, seed, amount=2.0):
    # a little noise so gradients do not band after JPEG and in video codecs
    return image + np.random.default_rng(seed).normal(0, amount, image.shape).astype(np.float32)


def save(name, image):
    cv2.imwrite(str(HERE / f"{name}.jpg"), np.clip(image, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 88])


def main():
    # colours are BGR
    save("dusk", grain(gradient((120, 60, 70), (90, 120, 230), 0.3), 1))
    save("ocean", grain(soft_blobs(gradient((110, 70, 20), (200, 160, 60), 0.2),
                                   [(0.2, 0.3, 0.25, (220, 200, 120)), (0.8, 0.7, 0.3, (160, 110, 40))], 120), 2))
    save("studio", grain(soft_blobs(gradient((60, 62, 66), (30, 31, 33)), [(0.5, 0.35, 0.55, (120, 124, 130))], 200), 3))
    save("bokeh", grain(soft_blobs(gradient((70, 40, 35), (40, 25, 30)),
                                   [(x, y, r, c) for x, y, r, c in [(0.15, 0.25, 0.08, (120, 200, 255)),
                                    (0.35, 0.7, 0.11, (90, 160, 250)), (0.7, 0.2, 0.07, (200, 220, 255)),
                                    (0.85, 0.6, 0.12, (110, 150, 240)), (0.55, 0.45, 0.06, (150, 210, 255)),
                                    (0.1, 0.8, 0.09, (80, 130, 220))]], 18), 4))
    save("mint", grain(soft_blobs(gradient((200, 225, 190), (160, 200, 150), 1.2),
                                  [(0.75, 0.3, 0.4, (215, 240, 220)), (0.2, 0.9, 0.35, (150, 190, 140))], 150), 5))


if __name__ == "__main__":
    main()
