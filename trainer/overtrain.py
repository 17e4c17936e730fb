"""Overtraining detector: smoothed val loss, its minima, a verdict per evaluation, the checkpoint to keep.

Standard library only, so the TUI imports it without torch; the trainer feeds `Detector` one
evaluation at a time, and `analyse` replays a finished (or foreign) run from metrics.jsonl alone.
"""

from __future__ import annotations

import bisect
import collections
import functools
import itertools
import math
import statistics
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Collection, Mapping

if TYPE_CHECKING:
    from trainer.health_records import HealthSummary

VERDICTS = ("improving", "plateau", "overtraining", "collapsed")
NOISE_WINDOW = 50  # recent evaluations the noise level is read from: noise changes as training settles
MINIMA_NOISE_SDS = 2.0  # a local minimum must stand out of the smoothed noise by this many deviations
CORRELATION_WINDOW = 100  # most recent settled evaluations the noise correlation is read from
CORRELATION_MIN = 12  # fewer settled evaluations (6 residuals around the 7-point average): noise taken as independent
CORRELATION_SPAN = 7  # centred moving average the correlation is read around: it follows a rise, not the noise
CORRELATION_MAX = 0.9  # near 1 the noise is a random walk, which no test tells from a rise: cap the correction
CORRELATION_MARGIN = 0.674  # standard errors above the correlation read: its upper quartile (_noise_correlation)


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


class _Ema:
    """TensorBoard's debiased EMA, one value at a time, so the detector and `ema` agree to the bit."""

    def __init__(self, weight: float):
        self.weight, self.last, self.count = weight, 0.0, 0

    def push(self, value: float) -> float:
        if not math.isfinite(value):
            return value  # TensorBoard passes NaN/inf through without touching the average
        self.last = self.last * self.weight + (1 - self.weight) * value
        self.count += 1
        debias = 1 - self.weight ** self.count if self.weight != 1 else 1.0
        return self.last / debias


def ema(values: list[float], weight: float) -> list[float]:
    """TensorBoard's debiased exponential moving average (weight 0 = no smoothing)."""
    smoother = _Ema(weight)
    return [smoother.push(float(v)) for v in values]


def noise_level(values: list[float], window: int = NOISE_WINDOW) -> float:
    """Robust standard deviation of the evaluation-to-evaluation noise of the last `window` raw values.

    Read from second differences, so a steady trend (falling or rising) does not count as noise;
    the detector will not call a rise, nor `local_minima` a dip, that the noise alone explains.
    """
    recent = [v for v in values[-window:] if math.isfinite(v)]
    if len(recent) < 5:
        return 0.0
    second = [abs(recent[k - 1] - 2 * recent[k] + recent[k + 1]) for k in range(1, len(recent) - 1)]
    return 1.4826 * statistics.median(second) / math.sqrt(6)


class _NoiseWindow:
    """`noise_level` of the values pushed so far, kept up to date one value at a time (to the bit).

    The detector needs the noise level at most evaluations of a long plateau; recomputing it from the
    window each time was half the cost of replaying a 10,000-evaluation run.
    """

    def __init__(self, window: int = NOISE_WINDOW):
        self.window, self.count = window, 0
        self.finite: collections.deque[tuple[int, float]] = collections.deque()  # (position, value) in window
        self.second: list[float] = []  # |second differences| of consecutive finite values in window, sorted

    def push(self, value: float) -> float:
        if self.finite and self.finite[0][0] <= self.count - self.window:  # the oldest value leaves the window
            if len(self.finite) >= 3:
                (_, a), (_, b), (_, c) = self.finite[0], self.finite[1], self.finite[2]
                del self.second[bisect.bisect_left(self.second, abs(a - 2 * b + c))]
            self.finite.popleft()
        if math.isfinite(value):
            if len(self.finite) >= 2:
                bisect.insort(self.second, abs(self.finite[-2][1] - 2 * self.finite[-1][1] + value))
            self.finite.append((self.count, value))
        self.count += 1
        if len(self.finite) < 5:
            return 0.0
        return 1.4826 * _median_sorted(self.second) / math.sqrt(6)


def _finite_values(values: list[float], first: int, last: int) -> list[float]:
    """The finite values from index `first` to `last` inclusive (clipped to the list)."""
    return [v for v in values[max(0, first):max(0, last + 1)] if math.isfinite(v)]


def _median_sorted(values: list[float]) -> float:
    """The median of an already sorted list (NaN when empty), as statistics.median gives it."""
    n = len(values)
    return (values[(n - 1) // 2] + values[n // 2]) / 2 if n else math.nan


def _ar1_residual_lag1(phi: float, span: int = CORRELATION_SPAN) -> float:
    """Lag-1 autocorrelation of x minus its centred `span`-point moving average, for AR(1) noise x.

    The moving average takes part of the noise with it, so the residuals are less correlated than the
    noise (independent noise: -(span + 1) / (span (span - 1)), -0.19 for 7); `noise_correlation` maps a
    measured value back through this.
    """
    half = span // 2

    def covariance(lag: int) -> float:  # of the residuals, in units of the noise variance
        def gamma(d: int) -> float:
            return phi ** abs(d)
        with_average = sum(gamma(lag + j) + gamma(lag - j) for j in range(-half, half + 1)) / span
        averages = sum((span - abs(d)) * gamma(lag + d) for d in range(1 - span, span)) / span ** 2
        return gamma(lag) - with_average + averages

    return covariance(1) / covariance(0)


def noise_correlation(values: list[float], standard_errors: float = 0.0) -> float:
    """The lag-1 autocorrelation phi of the AR(1) noise that best explains consecutive finite `values`.

    Read from the residuals around a centred CORRELATION_SPAN-point moving average, which follows a
    trend (a rise under test included) closely enough that what is left is noise, and mapped back to
    phi through `_ar1_residual_lag1`. `standard_errors` = z reads an upper bound instead: the
    residuals' correlation raised by z / sqrt(n), about its standard error, before the (monotone) map.
    Within [-0.5, 0.95]; 0.0 when there are too few values to tell.
    """
    half, sums = CORRELATION_SPAN // 2, list(itertools.accumulate(values, initial=0.0))
    residuals = [values[t] - (sums[t + half + 1] - sums[t - half]) / CORRELATION_SPAN
                 for t in range(half, len(values) - half)]
    if len(residuals) < 3:
        return 0.0
    mean = statistics.fmean(residuals)
    centred = [r - mean for r in residuals]
    spread = sum(r * r for r in centred)
    if spread <= 0:
        return 0.0
    lag1 = (sum(a * b for a, b in zip(centred, centred[1:])) / spread
            + standard_errors / math.sqrt(len(residuals)))
    lag1s, phis = _residual_lag1_table()  # _ar1_residual_lag1 rises with phi: interpolate its inverse
    k = min(max(bisect.bisect_left(lag1s, lag1), 1), len(lag1s) - 1)
    phi = phis[k - 1] + (phis[k] - phis[k - 1]) * (lag1 - lag1s[k - 1]) / (lag1s[k] - lag1s[k - 1])
    return min(max(phi, phis[0]), phis[-1])


@functools.cache
def _residual_lag1_table() -> tuple[list[float], list[float]]:
    """`_ar1_residual_lag1` at phi = -0.5, -0.49, ..., 0.95, for `noise_correlation` to invert (built once)."""
    phis = [k / 100 for k in range(-50, 96)]
    return [_ar1_residual_lag1(phi) for phi in phis], phis


def _ar1_mean_variance_factor(count: int, phi: float) -> float:
    """Variance of the mean of `count` consecutive AR(1) values over that of `count` independent ones.

    1 + 2 * sum over k < count of (1 - k/count) * phi**k, in closed form; count / this is the
    effective sample size, which tends to count * (1 - phi) / (1 + phi).
    """
    if phi == 0:
        return 1.0
    return (1 + phi) / (1 - phi) - 2 * phi * (1 - phi ** count) / (count * (1 - phi) ** 2)


def _median_gap_se(noise: float, count: int, reference_count: int, correlation: float = 0.0) -> float:
    """Standard error of the difference of two medians of `count` and `reference_count` consecutive values.

    A median of n values with independent Gaussian noise sd s has about sqrt(pi/2) times the standard
    error of their mean, s / sqrt(n); small n makes that slightly generous (n = 1: exact 1x). With
    AR(1) noise of lag-1 `correlation` phi two things change: `noise`, read from second differences,
    is sqrt(2 (1 - phi) (3 - phi) / 6) of the level's sd s (their variance is 2 (1 - phi) (3 - phi) s**2,
    6 s**2 when independent), and n consecutive values count as n / `_ar1_mean_variance_factor`
    (that of a mean: correlation widens a median a little less, (2/pi) asin(phi**k) in place of phi**k,
    so this errs on the safe side).
    """
    phi = correlation
    level_noise = noise * math.sqrt(3 / ((1 - phi) * (3 - phi)))
    return level_noise * math.sqrt(math.pi / 2) * math.sqrt(_ar1_mean_variance_factor(count, phi) / count
                                                             + _ar1_mean_variance_factor(reference_count, phi)
                                                             / reference_count)


@dataclass(frozen=True)
class DetectorConfig:
    """Detector settings; relative thresholds so they hold whatever the loss scale."""

    smoothing: float = 0.6  # EMA weight of val, train and attention series
    patience: int = 5  # evaluations a rise (or a collapse) must last before it is called
    tolerance: float = 0.02  # relative rise of smoothed val loss above its minimum that counts
    prominence: float = 0.02  # relative prominence a smoothed minimum needs to be a candidate
    collapse_ratio: float = 0.5  # attention below this fraction of its best = collapsed
    min_evals: int = 3  # evaluations before any verdict other than improving
    noise_factor: float = 3.5  # standard errors the recent val level must clear the minimum's by (_rising)


@dataclass
class Evaluation:
    """One validation: its step, val loss, the train loss since the previous one, attention score."""

    step: int
    val_loss: float
    train_loss: float | None = None
    attention_score: float | None = None


@dataclass
class Verdict:
    """What the detector concludes after an evaluation; `changed` tells the trainer to log an event."""

    verdict: str  # one of VERDICTS
    step: int
    best_step: int  # raw minimum near the smoothed minimum
    best_val: float  # raw val loss at best_step
    onset_step: int | None  # step of the smoothed minimum before the sustained rise
    message: str
    changed: bool = False


class Detector:
    """Incremental overtraining detector; keeps every evaluation so a resume replays it exactly."""

    def __init__(self, config: DetectorConfig = DetectorConfig()):
        self.config = config
        self._reset()

    def _reset(self) -> None:
        self._emas = tuple(_Ema(self.config.smoothing) for _ in range(3))
        self._noise_window = _NoiseWindow()
        self._noise = 0.0  # noise_level of the raw val loss so far
        self._bottom: tuple[int, float, int] = (-1, math.nan, 0)  # minimum's index, median raw val around it, count
        self._steps: list[int] = []
        self._raw: tuple[list[float], ...] = ([], [], [])  # val loss, train loss, attention score
        self._smooth: tuple[list[float], ...] = ([], [], [])
        self._best = -1  # index of the smoothed val-loss minimum
        self._best_attention = -1  # index of the smoothed attention maximum
        self._recent: list[float] = []  # finite raw val of the last `patience` evaluations, sorted
        self._recent_level: list[tuple[float, int]] = []  # per evaluation: median of _recent, its size
        self._lowest: list[float] = []  # per evaluation: lowest finite raw val loss so far (inf before one)
        self._verdict: Verdict | None = None

    @property
    def verdict(self) -> Verdict | None:
        """The verdict after the latest evaluation (None before the first)."""
        return self._verdict

    def _append(self, evaluation: Evaluation) -> None:
        self._steps.append(int(evaluation.step))
        values = (evaluation.val_loss, evaluation.train_loss, evaluation.attention_score)
        for raw, smooth, smoother, value in zip(self._raw, self._smooth, self._emas, values):
            number = float(value) if value is not None else math.nan
            raw.append(number)
            smooth.append(smoother.push(number))
        i, val_s, att_s = len(self._steps) - 1, self._smooth[0], self._smooth[2]
        if math.isfinite(val_s[i]) and (self._best < 0 or val_s[i] < val_s[self._best]):
            self._best = i
        if math.isfinite(att_s[i]) and (self._best_attention < 0 or att_s[i] > att_s[self._best_attention]):
            self._best_attention = i
        val, patience = self._raw[0], self.config.patience  # slide the window: O(patience) per evaluation
        if math.isfinite(val[i]):
            bisect.insort(self._recent, val[i])
        if i >= patience and math.isfinite(val[i - patience]):
            del self._recent[bisect.bisect_left(self._recent, val[i - patience])]
        self._recent_level.append((_median_sorted(self._recent), len(self._recent)))
        self._noise = self._noise_window.push(val[i])
        lowest = self._lowest[-1] if self._lowest else math.inf
        self._lowest.append(min(lowest, val[i]) if math.isfinite(val[i]) else lowest)

    def update(self, evaluation: Evaluation) -> Verdict:
        """Add one evaluation and return the verdict; `changed` is True when the verdict differs."""
        self._append(evaluation)
        verdict = self._judge()
        verdict.changed = verdict.verdict != (self._verdict.verdict if self._verdict else "improving")
        self._verdict = verdict
        return verdict

    def _collapsed(self, i: int) -> bool:
        """Smoothed attention below collapse_ratio of its best, for patience evaluations (or already called)."""
        a, att_s, c = self._best_attention, self._smooth[2], self.config
        low = [k for k in range(max(a + 1, i - c.patience + 1), i + 1)
               if a >= 0 and _finite(att_s[k]) and att_s[k] < c.collapse_ratio * att_s[a]]
        held = self._verdict is not None and self._verdict.verdict == "collapsed"
        return bool(low) and low[-1] == i and (held or len(low) >= c.patience)

    def _rising(self, i: int, b: int) -> bool:
        """Val loss above its minimum by more than the tolerance and the noise explain, for patience evaluations.

        Two tests, each at every one of the last `patience` evaluations:

        - size: smoothed val loss above the smoothed minimum by `tolerance` (relative), as a user
          reads it off the chart;
        - evidence: the median of the last `patience` raw values above the median of the raw values
          within `patience` evaluations of the minimum, by `noise_factor` standard errors of that
          difference (`_median_gap_se`: the noise from `noise_level`, its correlation from
          `_noise_correlation`).

        The evidence compares levels, not the smoothed minimum: that minimum is the lowest of many
        noisy values, about a noise deviation below the level on a long plateau, so a guard measured
        from it must be wide enough to clear that selection bias and then misses real rises of two or
        three deviations (a 2-clip validation set). Medians let one or two odd evaluations, high
        (spikes) or low (dips), pass. The default `noise_factor` 3.5 is the lowest with no false alarm
        on bench/overtrain_eval.py's random plateaus (3.0: 1-3%). The val - train gap is no evidence:
        it widens on a plateau as much as on a rise, as long as train loss falls (the gate in `_judge`).

        Correlated noise (a fixed validation set under a slowly changing model) wanders in runs that a
        test for independent noise reads as rises: half of the random plateaus with AR(1) 0.5 noise
        were called. Its bar is never lower than the independent one (phi >= 0), so it is read only
        once that one is cleared, which also keeps updates cheap.
        """
        c, val, val_s = self.config, self._raw[0], self._smooth[0]
        if i - b < c.patience:
            return False
        window = range(i - c.patience + 1, i + 1)
        if not all(val_s[k] > val_s[b] + c.tolerance * abs(val_s[b]) for k in window):
            return False
        if self._bottom[0] != b:  # b + patience <= i: every value around the minimum is in, for good
            bottom = sorted(_finite_values(val, b - c.patience, b + c.patience))
            self._bottom = (b, _median_sorted(bottom), len(bottom))
        _, reference, reference_count = self._bottom
        levels = [self._recent_level[j] for j in window]
        if not all(count and level > reference for level, count in levels):
            return False  # no gap at all: spare reading the noise

        def clears(correlation: float) -> bool:
            bars = {count: reference + c.noise_factor * _median_gap_se(self._noise, count, reference_count,
                                                                       correlation)
                    for count in {count for _, count in levels}}  # one count unless val loss was NaN
            return all(level > bars[count] for level, count in levels)

        return clears(0.0) and clears(self._noise_correlation(i, reference))

    def _noise_correlation(self, i: int, reference: float) -> float:
        """The val noise's lag-1 correlation for the rise test: read from the settled evaluations, erring high.

        Settled: from the first evaluation down at the bottom's level (`reference`), since the descent
        before it is trend, not noise, and would read as correlation; the last CORRELATION_WINDOW of
        them, and none when fewer than CORRELATION_MIN. Read at its upper quartile (CORRELATION_MARGIN
        standard errors above the estimate): the bar grows faster than linearly with phi and is tested
        anew at every evaluation, so an estimate that is right on average under-corrects
        (bench/overtrain_eval.py's AR(1) 0.5 plateaus: 1.5-5% called at the estimate, 0-0.5% at the upper
        quartile; one standard error halves the calls at AR(1) 0.7-0.8 but misses 1 of 200 slow rises
        and calls onset-08 at evaluation 67 of 70).
        """
        settled = bisect.bisect_left(self._lowest, -reference, key=lambda lowest: -lowest)
        values = _finite_values(self._raw[0], max(settled, i - CORRELATION_WINDOW + 1), i)
        if len(values) < CORRELATION_MIN:
            return 0.0
        return min(CORRELATION_MAX, max(0.0, noise_correlation(values, CORRELATION_MARGIN)))

    def _judge(self) -> Verdict:
        c, i, b, steps = self.config, len(self._steps) - 1, self._best, self._steps
        val, (val_s, train_s, att_s) = self._raw[0], self._smooth
        if b < 0:
            return Verdict("improving", steps[i], steps[i], val[i], None, "no finite val loss yet")
        near = _snap(val, b, snap_radius(c.smoothing), i)
        where = f"best {val[near]:.4g} at step {steps[near]}"

        def verdict(name: str, onset_step: int | None, message: str) -> Verdict:
            return Verdict(name, steps[i], steps[near], val[near], onset_step, message)

        if i + 1 < c.min_evals:
            return verdict("improving", None, f"warming up: {where}")
        if self._collapsed(i):
            a = self._best_attention
            return verdict("collapsed", None, f"attention collapsed: score {att_s[i]:.3f}, best {att_s[a]:.3f} "
                                              f"at step {steps[a]}; val loss {where}")
        held = (self._verdict is not None and self._verdict.verdict == "overtraining"
                and self._verdict.onset_step == steps[b])  # stays until a new minimum, no flapping
        rising, start = not held and self._rising(i, b), i - c.patience  # held: no need to test again
        train_falling = (train_s[i] < train_s[start] if start >= 0 and _finite(train_s[i])
                         and _finite(train_s[start]) else None)  # None: no train loss to tell
        if i > b and (held or rising and train_falling is not False):
            trend = (f" while train loss fell {train_s[b]:.4g} → {train_s[i]:.4g}"
                     if _finite(train_s[b]) and _finite(train_s[i]) else "")
            return verdict("overtraining", steps[b], f"overtraining since step {steps[b]}: val loss "
                                                     f"{val_s[b]:.4g} → {val_s[i]:.4g}{trend}; {where}")
        if i - b >= c.patience:
            why = "val loss rising but train loss not falling" if rising else "no new val-loss minimum"
            return verdict("plateau", None, f"plateau: {why} for {i - b} evaluations; {where}")
        return verdict("improving", None, f"improving: val loss {val_s[i]:.4g}; {where}")

    def state_dict(self) -> dict[str, Any]:
        """The evaluations seen and the last verdict, JSON-serialisable (NaN stored as null)."""
        def plain(values: list[float]) -> list[float | None]:
            return [v if math.isfinite(v) else None for v in values]
        return {"version": 1, "steps": list(self._steps), "val_loss": plain(self._raw[0]),
                "train_loss": plain(self._raw[1]), "attention_score": plain(self._raw[2]),
                "verdict": asdict(self._verdict) if self._verdict else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Replay the stored evaluations, so the next update answers as if never interrupted."""
        self._reset()
        for step, val, train, attention in zip(state["steps"], state["val_loss"], state["train_loss"],
                                               state["attention_score"]):
            self._append(Evaluation(step, math.nan if val is None else val, train, attention))
        self._verdict = Verdict(**state["verdict"]) if state.get("verdict") else None


def snap_radius(smoothing: float) -> int:
    """How far the raw minimum may sit from the smoothed one: about the EMA's lag in evaluations."""
    return math.ceil(smoothing / (1 - smoothing)) if smoothing < 1 else 1


def _snap(raw: list[float], index: int, radius: int, last: int) -> int:
    """The index of the lowest finite raw value within `radius` of `index` (ties: the earliest)."""
    nearby = [k for k in range(max(0, index - radius), min(last, index + radius) + 1) if math.isfinite(raw[k])]
    return min(nearby, key=lambda k: (raw[k], k)) if nearby else index


def local_minima(steps: list[int], values: list[float], prominence: float, smoothing: float) -> list[int]:
    """indices of local minima of the val loss: found on the smoothed series with a relative prominence
    threshold, each reported at the raw minimum nearby (candidates from the raw series).

    The prominence must also exceed MINIMA_NOISE_SDS standard deviations of the smoothed noise, so
    a noisy validation set does not list every wiggle; the last evaluation is never a minimum,
    since nothing after it says whether the loss turns up.
    """
    raw = [float(v) for v in values]
    smooth = ema(raw, smoothing)
    smooth_noise = noise_level(raw, len(raw)) * math.sqrt((1 - smoothing) / (1 + smoothing))
    finite = [k for k in range(len(smooth)) if math.isfinite(smooth[k])]
    found: set[int] = set()
    for pos in range(1, len(finite) - 1):
        k = finite[pos]
        if not (smooth[k] < smooth[finite[pos - 1]] and smooth[k] <= smooth[finite[pos + 1]]):
            continue
        peaks = []
        for side in (reversed(finite[:pos]), finite[pos + 1:]):
            peak = smooth[k]
            for j in side:  # highest point before the series drops below this minimum again
                if smooth[j] < smooth[k]:
                    break
                peak = max(peak, smooth[j])
            peaks.append(peak)
        if min(peaks) - smooth[k] >= max(prominence * abs(smooth[k]), MINIMA_NOISE_SDS * smooth_noise):
            found.add(_snap(raw, k, snap_radius(smoothing), len(raw) - 1))
    return sorted(found)


@dataclass
class Candidate:
    """A local minimum of the val loss and the saved checkpoint nearest to it."""

    step: int
    val_loss: float
    checkpoint_step: int | None
    checkpoint_val_loss: float | None


def candidates(evaluations: list[Evaluation], checkpoint_steps: dict[int, float | None],
               config: DetectorConfig = DetectorConfig()) -> list[Candidate]:
    """each local minimum mapped to the saved checkpoint nearest to it (by step; ties: the earlier)."""
    steps = [e.step for e in evaluations]
    values = [float(e.val_loss) for e in evaluations]
    saved = sorted(checkpoint_steps)
    found = []
    for k in local_minima(steps, values, config.prominence, config.smoothing):
        at = bisect.bisect_left(saved, steps[k])  # the saved steps either side of the minimum
        nearest = min(saved[max(0, at - 1):at + 1], key=lambda s: (abs(s - steps[k]), s)) if saved else None
        found.append(Candidate(steps[k], values[k], nearest,
                               checkpoint_steps.get(nearest) if nearest is not None else None))
    return found


def recommend(checkpoint_val_loss: Mapping[int, float | None],
              health: Mapping[int, HealthSummary] | None = None) -> int | None:
    """The recommended checkpoint: the one that speaks best, then the lowest validation loss.

    The one rule behind every "recommended" (Monitor, `voxtop checkpoints`, `voxtop export`,
    rotation), so they cannot disagree. The candidates are the keys of `checkpoint_val_loss`
    (the checkpoints still on disk). If any of them has a read-through health record, only
    those compete, and a lower val loss never beats a checkpoint that speaks:

    1. the most held-out sentences read to the end (`read_through`),
    2. then the most understood by the recogniser (unknown counts below 0),
    3. then the lowest val loss (ties: the earlier); if none of those left has one, the newest.

    While no judged checkpoint reads a single sentence through or is understood once, health tells
    nothing apart and the lowest val loss over all of them decides.

    With no health record at all, the lowest val loss (ties: the earlier), None if none has one.
    """
    if health:
        judged = [step for step in checkpoint_val_loss if step in health]
        if judged:
            def speaks(step: int) -> tuple[int, int]:
                found = health[step]
                return found.read_through, -1 if found.understood is None else found.understood

            best = max(speaks(step) for step in judged)
            if best[0] > 0 or best[1] > 0:  # health tells them apart; when none speaks at all, it does not
                tied = [step for step in judged if speaks(step) == best]
                lowest = _lowest_val_loss({step: checkpoint_val_loss[step] for step in tied})
                return max(tied) if lowest is None else lowest
    return _lowest_val_loss(checkpoint_val_loss)


def _lowest_val_loss(checkpoint_val_loss: Mapping[int, float | None]) -> int | None:
    known = [(float(loss), step) for step, loss in checkpoint_val_loss.items()
             if isinstance(loss, (int, float)) and not isinstance(loss, bool) and math.isfinite(loss)]
    return min(known)[1] if known else None


def recommendation_reason(step: int, checkpoint_val_loss: Mapping[int, float | None],
                          health: Mapping[int, HealthSummary] | None = None) -> str:
    """Why `recommend` chose `step`, for people: `reads to the end 11/12, understood 3/12` or `lowest val loss`."""
    found = (health or {}).get(step)
    if found is not None and (found.read_through > 0 or (found.understood or 0) > 0):
        return f"reads to the end {found.reads_text()}, understood {found.understood_text()}"
    return "lowest val loss"


def protected_checkpoints(evaluations: list[Evaluation], checkpoint_steps: dict[int, float | None],
                          keep_best: int, config: DetectorConfig = DetectorConfig(),
                          health: Mapping[int, HealthSummary] | None = None) -> set[int]:
    """checkpoint steps rotation must never delete: the keep_best candidates with lowest val loss (their
    mapped checkpoints) plus the recommendation (`recommend`, with `health` if given), so the ones a
    user wants to listen to still exist."""
    protected: set[int] = set()
    for candidate in sorted(candidates(evaluations, checkpoint_steps, config), key=lambda c: (c.val_loss, c.step)):
        if len(protected) >= keep_best:
            break
        if candidate.checkpoint_step is not None:
            protected.add(candidate.checkpoint_step)
    best = recommend(checkpoint_steps, health)
    return protected | ({best} if best is not None else set())


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def evaluations_from_records(records: list[dict], existing: Collection[int] | None = None
                             ) -> tuple[list[Evaluation], dict[int, float | None], dict[int, list[str]]]:
    """(evaluations, checkpoint val loss by step, checkpoint tags by step) from metrics.jsonl records.

    The train loss of an evaluation is the mean of the train records since the previous one (or the
    last train record); a resume supersedes the records past its step; `existing` limits checkpoints
    to those still on disk, since rotation deletes files but not records.
    """
    from trainer.rundir import current_history  # stdlib-only module, owner of the resume rule

    evaluations: list[Evaluation] = []
    checkpoint_steps: dict[int, float | None] = {}
    checkpoint_tags: dict[int, list[str]] = {}
    pending: list[float] = []
    last_train: float | None = None
    for record in current_history(records):
        kind, step = record.get("kind"), record.get("step")
        if not isinstance(step, int):
            continue
        loss = _number(record.get("loss"))
        if kind == "train" and loss is not None:
            pending.append(loss)
            last_train = loss
        elif kind == "val" and loss is not None:
            train_loss = statistics.fmean(pending) if pending else last_train
            evaluations.append(Evaluation(step, loss, train_loss, _number(record.get("attention_score"))))
            pending = []
        elif kind == "checkpoint" and (existing is None or step in existing):
            checkpoint_steps[step] = _number(record.get("val_loss"))
            checkpoint_tags[step] = [t for t in record.get("tags") or [] if isinstance(t, str)]
    return evaluations, checkpoint_steps, checkpoint_tags


def analyse(records: list[dict], config: DetectorConfig = DetectorConfig(),
            existing: Collection[int] | None = None) -> dict[str, Any]:
    """The detector replayed over a run's metrics.jsonl records, with minima, candidates and checkpoint tags.

    Works on a finished or foreign run after the fact; `existing` as in `evaluations_from_records`.
    The recommendation weighs the checkpoints' read-through health records (see `recommend`).
    """
    from trainer.health_records import health_by_step

    evaluations, checkpoint_steps, checkpoint_tags = evaluations_from_records(records, existing)
    health = health_by_step(records, existing)
    detector = Detector(config)
    history = [asdict(detector.update(e)) for e in evaluations]
    found = candidates(evaluations, checkpoint_steps, config)
    tags, recommended, reason = tag_checkpoints(found, checkpoint_steps, checkpoint_tags, health)
    onsets = [h["onset_step"] for h in history if h["verdict"] == "overtraining"]
    return {"verdict": history[-1] if history else None, "history": history,
            "minima": [c.step for c in found], "onset_step": onsets[-1] if onsets else None,
            "candidates": [asdict(c) for c in found], "recommended": recommended,
            "recommended_reason": reason, "tags": tags}


def tag_checkpoints(found: list[Candidate], checkpoint_val_loss: Mapping[int, float | None],
                    checkpoint_tags: Mapping[int, list[str]], health: Mapping[int, HealthSummary] | None = None
                    ) -> tuple[dict[int, list[str]], int | None, str | None]:
    """(tags by checkpoint step, the recommended step, why): the saved tags, `minimum` on the checkpoint
    nearest each val-loss minimum in `found`, and `recommended` first on `recommend`'s choice.

    The one tagging rule of `analyse`, the Monitor's live analysis and `voxtop checkpoints`.
    """
    tags = {step: [t for t in saved if isinstance(t, str)] for step, saved in checkpoint_tags.items()}
    for candidate in found:
        if candidate.checkpoint_step is not None:
            marked = tags.setdefault(candidate.checkpoint_step, [])
            if "minimum" not in marked:
                marked.append("minimum")
    recommended = recommend(checkpoint_val_loss, health)
    reason = None
    if recommended is not None:
        tags.setdefault(recommended, []).insert(0, "recommended")
        reason = recommendation_reason(recommended, checkpoint_val_loss, health)
    return {step: found_tags for step, found_tags in sorted(tags.items()) if found_tags}, recommended, reason
