"""Writes tiny-bo-zh.jsonl: Tibetan->Chinese pairs composed by the semrl project from a small
lexicon (no text copied from elsewhere). Run from this folder: python generate_tiny_bo_zh.py"""

import json
from pathlib import Path

# subject (Tibetan, already ergative), Chinese
SUBJECTS = [("ཨ་མས", "妈妈"), ("ཨ་ཕས", "爸爸"), ("སློབ་མས", "学生"), ("ཞིང་པས", "农民"), ("བུ་མོས", "女孩"), ("ཁོས", "他")]
# object + verb stem (Tibetan), connective after the verb, Chinese verb + object
ACTIONS = [("ཇ་འཐུང", "གི", "喝茶"), ("ཆུ་འཐུང", "གི", "喝水"), ("ཁ་ལག་བཟའ", "གི", "吃饭"),
           ("དེབ་ཀློག", "གི", "读书"), ("ཡི་གེ་འབྲི", "གི", "写字"), ("གླུ་ལེན", "གྱི", "唱歌")]


def pairs():
    for (s_bo, s_zh) in SUBJECTS:
        for (vo_bo, link, vo_zh) in ACTIONS:
            yield {"source": f"{s_bo}་{vo_bo}་{link}་འདུག", "reference": f"{s_zh}在{vo_zh}。"}
            yield {"source": f"སང་ཉིན་{s_bo}་{vo_bo}་{link}་རེད།", "reference": f"明天{s_zh}会{vo_zh}。"}


if __name__ == "__main__":
    here = Path(__file__).parent
    rows = list(pairs())
    rows += [{"source": s, "reference": r} for s, r in zip(
        (here / "../../../src/semrl/assets/samples/bo.txt").read_text(encoding="utf-8").splitlines(),
        (here / "../../../src/semrl/assets/samples/zh.txt").read_text(encoding="utf-8").splitlines())]
    for i, row in enumerate(rows):
        row["id"] = f"bozh-{i:03d}"
    with open(here / "tiny-bo-zh.jsonl", "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} pairs")
