"""The fit loop on the handwritten digits: a cosine schedule with warmup, early stopping, the best checkpoint and a
CSV log, in a few lines. Writes into the folder given as its argument (default: runs/fit_digits). Needs the
``datasets`` extra (scikit-learn) for the digits.
"""

import os
import sys

from minidl.backend import seed
from minidl.cost import CrossEntropy
from minidl.datasets import loadDigits
from minidl.models import MODELS
from minidl.optim import MomentumSGD
from minidl.optim.schedules import CosineSchedule
from minidl.train import BestCheckpoint, CsvLog, EarlyStopping, Trainer, loadCheckpoint

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join("runs", "fit_digits")
os.makedirs(out, exist_ok=True)
seed(0)
digits = loadDigits()
net = MODELS["mlp"].build((64,), digits.classes)
optimizer = MomentumSGD(learnRate=0.1).setupOn(net, useGlobalState=True)
trainer = Trainer(net, CrossEntropy(), optimizer, batchsize=64, verbose=False)

stepsPerEpoch, epochs = -(-len(digits.trainData) // 64), 6
history = trainer.fit(
    digits.trainData, digits.trainLabels, epochs, validation=(digits.valData, digits.valLabels),
    schedule=CosineSchedule(optimizer, total=epochs * stepsPerEpoch, warmup=stepsPerEpoch), scheduleEvery="step",
    callbacks=[EarlyStopping("valError", patience=3), BestCheckpoint(os.path.join(out, "best.safetensors")),
               CsvLog(os.path.join(out, "log.csv"))],
)
best = loadCheckpoint(os.path.join(out, "best.safetensors"), net, optimizer)
print(f"best epoch {best.epoch}: val error {history[best.epoch - 1]['valError']:.4f}")
