"""A short name for a User-Agent header: "Chrome on Windows", "Safari on iPhone".

Our own few rules, no dependency: the list only has to let a person recognise their devices.
The order matters: Edge and Opera say "Chrome" too, Chrome says "Safari", and iPadOS may say
"Macintosh".
"""

import re

from portal.i18n import gettext as _

# (pattern, name): the first that matches names the browser.
BROWSERS = (
    (re.compile(r"\bEdg(e|A|iOS)?/"), "Edge"),
    (re.compile(r"\b(OPR|Opera)/"), "Opera"),
    (re.compile(r"\bSamsungBrowser/"), "Samsung Internet"),
    (re.compile(r"\b(Firefox|FxiOS)/"), "Firefox"),
    (re.compile(r"\b(Chrome|CriOS|HeadlessChrome|Chromium)/"), "Chrome"),
    (re.compile(r"\bVersion/[\d.]+.*\bSafari/"), "Safari"),
)
SYSTEMS = (
    (re.compile(r"\biPhone\b"), "iPhone"),
    (re.compile(r"\biPad\b"), "iPad"),
    (re.compile(r"\bAndroid\b"), "Android"),
    (re.compile(r"\bWindows\b"), "Windows"),
    (re.compile(r"\bCrOS\b"), "ChromeOS"),
    (re.compile(r"\bMac OS X\b|\bMacintosh\b"), "macOS"),
    (re.compile(r"\bLinux\b"), "Linux"),
)


def browser_of(user_agent: str) -> str | None:
    return next((name for pattern, name in BROWSERS if pattern.search(user_agent)), None)


def system_of(user_agent: str) -> str | None:
    return next((name for pattern, name in SYSTEMS if pattern.search(user_agent)), None)


def describe(user_agent: str | None) -> str:
    """The device's name in the current language."""
    user_agent = user_agent or ""
    browser, system = browser_of(user_agent), system_of(user_agent)
    if browser and system:
        return _("%(browser)s on %(system)s", browser=browser, system=system)
    if browser:
        return browser
    if system:
        return _("A browser on %(system)s", system=system)
    return _("Unknown browser")
