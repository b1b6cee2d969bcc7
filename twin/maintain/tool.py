"""One tool group's model for a study (hours): degradation, failure, repair, PM, sensor, yield, prices."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from kernels import maintenance as M
from twin.distributions import Dist
from twin.errors import ConfigError
from twin.maintain.checks import _dist, _int, _mapping, _num, _only
from twin.maintain.line_tool import tool_config_from_line


@dataclass(frozen=True)
class ToolModel:
    """One tool group's degradation, failure, maintenance, sensor, yield and price model (hours)."""

    name: str
    wafers_per_hour: float
    utilisation: float = 1.0
    drift: float = 0.0  # condition per wafer
    noise: float = 0.0  # condition sd per sqrt(wafer)
    step_wafers: float = 25.0  # wafers between condition updates and sensor readings
    life: Dist | None = None  # operating hours to an age failure
    threshold: Dist | None = None  # condition level that fails the tool
    hazard_h0: float = 0.0  # per operating hour at c = 0
    hazard_b: float = 0.0  # hazard multiplies by exp(b c)
    repair: Dist = Dist.constant(8.0)
    pm_duration: Dist = Dist.constant(4.0)
    sensor_noise: float = 0.0
    forget: float = 1.0  # reading weight decay in the RUL fit
    min_readings: int = 3
    die_area_cm2: float = 1.0
    d0: float = 0.0  # killer defects per cm^2 on a new tool
    gross_dies: float = 1.0
    price_pm: float = 0.0
    price_repair: float = 0.0
    price_down_hour: float = 0.0
    currency: str = "USD"  # the unit of every price and cost
    warn_level: float = math.inf  # condition at which a failure is predicted (RUL = 0)
    warn_horizon: float = 0.0  # hours: warn when predicted RUL falls below
    warn_window: float = 1.0  # hours after a warning within which a failure matches it
    warn_bins: int = 48

    @property
    def degrades(self) -> bool:
        return self.drift > 0.0 or self.noise > 0.0

    def tables(self, horizon_hours: float) -> tuple[np.ndarray, np.ndarray]:
        """``(gi, gf)`` as :mod:`kernels.maintenance` reads them."""
        gi = np.zeros(M.N_GI, np.int32)
        gf = np.zeros(M.N_GF, np.float64)
        life = self.life.encode() if self.life else (0, 0.0, 0.0, 0.0)
        thr = self.threshold.encode() if self.threshold else (0, 0.0, 0.0, 0.0)
        rep, pm = self.repair.encode(), self.pm_duration.encode()
        gi[[M.GI_LIFE_ON, M.GI_LIFE_KIND, M.GI_THR_ON, M.GI_THR_KIND]] = [self.life is not None, life[0],
                                                                         self.threshold is not None, thr[0]]
        gi[[M.GI_HAZ_ON, M.GI_REPAIR_KIND, M.GI_PM_KIND, M.GI_MIN_READ, M.GI_BINS]] = [
            self.hazard_h0 > 0.0, rep[0], pm[0], self.min_readings, self.warn_bins]
        gf[[M.GF_HORIZON, M.GF_RATE, M.GF_UTIL, M.GF_DRIFT, M.GF_NOISE]] = [
            horizon_hours, self.wafers_per_hour, self.utilisation, self.drift, self.noise]
        gf[M.GF_STEP_W] = self.step_wafers if self.degrades else M.INF
        gf[[M.GF_SENSOR_SD, M.GF_FORGET, M.GF_H0, M.GF_HB]] = [self.sensor_noise, self.forget, self.hazard_h0,
                                                               self.hazard_b]
        gf[M.GF_LIFE_P0:M.GF_LIFE_P2 + 1] = life[1:]
        gf[M.GF_THR_P0:M.GF_THR_P2 + 1] = thr[1:]
        gf[M.GF_REPAIR_P0:M.GF_REPAIR_P2 + 1] = rep[1:]
        gf[M.GF_PM_P0:M.GF_PM_P2 + 1] = pm[1:]
        gf[[M.GF_KILL, M.GF_GROSS, M.GF_PRICE_PM, M.GF_PRICE_REPAIR, M.GF_PRICE_DOWN]] = [
            self.die_area_cm2 * self.d0, self.gross_dies, self.price_pm, self.price_repair, self.price_down_hour]
        gf[[M.GF_WARN_LEVEL, M.GF_WARN_HORIZON, M.GF_WARN_WINDOW]] = [
            min(self.warn_level, M.INF), self.warn_horizon, self.warn_window]
        return gi, gf


def parse_tool(cfg: dict, warnings: dict | None = None) -> ToolModel:
    """Validate a ``tool`` mapping (configs/maintain/tool/*.yaml) and the ``warnings`` settings."""
    cfg = _mapping(cfg, "tool")
    if "group" in cfg:
        cfg = tool_config_from_line(cfg)
    _only(cfg, "tool", {"name", "wafers_per_hour", "utilisation", "condition", "failure", "repair", "pm_duration",
                        "sensor", "yield", "prices"})
    cond = _mapping(cfg.get("condition"), "tool.condition")
    _only(cond, "tool.condition", {"drift", "noise", "step_wafers"})
    fail = _mapping(cfg.get("failure"), "tool.failure")
    _only(fail, "tool.failure", {"life", "threshold", "hazard"})
    hazard = _mapping(fail.get("hazard"), "tool.failure.hazard")
    _only(hazard, "tool.failure.hazard", {"h0", "b"})
    sensor = _mapping(cfg.get("sensor"), "tool.sensor")
    _only(sensor, "tool.sensor", {"noise", "forget", "min_readings"})
    ycfg = _mapping(cfg.get("yield"), "tool.yield")
    _only(ycfg, "tool.yield", {"die_area_cm2", "d0", "gross_dies"})
    prices = _mapping(cfg.get("prices"), "tool.prices")
    _only(prices, "tool.prices", {"pm", "repair", "down_hour", "currency"})
    life = _dist(fail.get("life"), "tool.failure.life")
    threshold = _dist(fail.get("threshold"), "tool.failure.threshold")
    tool = ToolModel(
        name=str(cfg.get("name") or "tool"),
        wafers_per_hour=_num(cfg.get("wafers_per_hour", 1.0), "tool.wafers_per_hour", low=0.0, open_low=True),
        utilisation=_num(cfg.get("utilisation", 1.0), "tool.utilisation", low=0.0, high=1.0, open_low=True),
        drift=_num(cond.get("drift", 0.0), "tool.condition.drift"),
        noise=_num(cond.get("noise", 0.0), "tool.condition.noise"),
        step_wafers=_num(cond.get("step_wafers", 25.0), "tool.condition.step_wafers", low=1e-3),
        life=life,
        threshold=threshold,
        hazard_h0=_num(hazard.get("h0", 0.0), "tool.failure.hazard.h0"),
        hazard_b=_num(hazard.get("b", 0.0), "tool.failure.hazard.b", low=-math.inf),
        repair=_dist(cfg.get("repair", 8.0), "tool.repair", required=True),
        pm_duration=_dist(cfg.get("pm_duration", 4.0), "tool.pm_duration", required=True),
        sensor_noise=_num(sensor.get("noise", 0.0), "tool.sensor.noise"),
        forget=_num(sensor.get("forget", 1.0), "tool.sensor.forget", low=0.0, high=1.0, open_low=True),
        min_readings=_int(sensor.get("min_readings", 3), "tool.sensor.min_readings", 2),
        die_area_cm2=_num(ycfg.get("die_area_cm2", 1.0), "tool.yield.die_area_cm2"),
        d0=_num(ycfg.get("d0", 0.0), "tool.yield.d0"),
        gross_dies=_num(ycfg.get("gross_dies", 1.0), "tool.yield.gross_dies"),
        price_pm=_num(prices.get("pm", 0.0), "tool.prices.pm"),
        price_repair=_num(prices.get("repair", 0.0), "tool.prices.repair"),
        price_down_hour=_num(prices.get("down_hour", 0.0), "tool.prices.down_hour"),
        currency=_currency(prices.get("currency", "USD")),
    )
    if life is None and threshold is None and tool.hazard_h0 == 0.0:
        raise ConfigError("tool.failure", fail, "give at least one of life, threshold or hazard.h0 > 0")
    if threshold is not None and not tool.degrades:
        raise ConfigError("tool.failure.threshold", fail.get("threshold"),
                          "a condition threshold needs condition.drift or condition.noise > 0")
    return _with_warnings(tool, warnings or {})


def _with_warnings(tool: ToolModel, cfg: dict) -> ToolModel:
    from dataclasses import replace

    cfg = _mapping(cfg, "warnings")
    _only(cfg, "warnings", {"level", "horizon_hours", "window_hours", "bins"})
    level = cfg.get("level")
    if level is None:
        level = tool.threshold.mean if tool.threshold is not None else math.inf
    level = _num(level, "warnings.level", low=0.0, open_low=True, finite=False)
    horizon = _num(cfg.get("horizon_hours", 48.0), "warnings.horizon_hours")
    window = _num(cfg.get("window_hours", 2.0 * horizon), "warnings.window_hours", low=0.0, open_low=True)
    return replace(tool, warn_level=level, warn_horizon=horizon, warn_window=window,
                   warn_bins=_int(cfg.get("bins", 48), "warnings.bins", 1))


def _currency(value) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 16:
        raise ConfigError("tool.prices.currency", value, "a short unit name such as USD or EUR")
    return value.strip()
