"""Every word the portal pages show, in English, German and Chinese (DESIGN §7c)."""

from __future__ import annotations

WORDS: dict[str, tuple[str, str, str]] = {
    # (en, de, zh)
    "portal": ("Customer portal", "Kundenportal", "客户中心"),
    "login": ("Sign in", "Anmelden", "登录"),
    "logout": ("Sign out", "Abmelden", "退出"),
    "register": ("Create account", "Konto anlegen", "注册账户"),
    "email": ("Email address", "E-Mail-Adresse", "电子邮箱"),
    "password": ("Password", "Passwort", "密码"),
    "new_password": ("New password", "Neues Passwort", "新密码"),
    "old_password": ("Current password", "Aktuelles Passwort", "当前密码"),
    "password_hint": ("At least 8 characters.", "Mindestens 8 Zeichen.", "至少 8 个字符。"),
    "ticket": ("License key or card key", "Lizenzschlüssel oder Kartenschlüssel", "许可证密钥或卡密"),
    "ticket_hint": (
        "The key you received with your purchase. It is added to your new account.",
        "Der Schlüssel aus Ihrem Kauf. Er wird Ihrem neuen Konto zugeordnet.",
        "您购买时收到的密钥，将添加到新账户中。",
    ),
    "no_account": ("No account yet?", "Noch kein Konto?", "还没有账户？"),
    "have_account": ("Already registered?", "Schon registriert?", "已经注册？"),
    "forgot": ("Forgot your password?", "Passwort vergessen?", "忘记密码？"),
    "verify": ("Confirm your email address", "E-Mail-Adresse bestätigen", "确认电子邮箱"),
    "verify_intro": (
        "We sent a six-digit code to {email}. Enter it here; it is valid for 24 hours.",
        "Wir haben einen sechsstelligen Code an {email} geschickt. "
        "Geben Sie ihn hier ein; er gilt 24 Stunden.",
        "我们已向 {email} 发送了六位验证码，请在此输入，24 小时内有效。",
    ),
    "code": ("Code", "Code", "验证码"),
    "confirm": ("Confirm", "Bestätigen", "确认"),
    "resend": ("Send a new code", "Neuen Code senden", "重新发送验证码"),
    "code_sent": ("A new code is on its way.", "Ein neuer Code ist unterwegs.", "新验证码已发送。"),
    "my_licenses": ("My licenses", "Meine Lizenzen", "我的许可证"),
    "no_licenses": (
        "No license is attached to this account.",
        "Diesem Konto ist keine Lizenz zugeordnet.",
        "此账户尚无许可证。",
    ),
    "license": ("License", "Lizenz", "许可证"),
    "status": ("Status", "Status", "状态"),
    "status_active": ("active", "aktiv", "有效"),
    "status_suspended": ("suspended", "gesperrt", "已暂停"),
    "status_revoked": ("revoked", "widerrufen", "已撤销"),
    "status_expired": ("expired", "abgelaufen", "已过期"),
    "expires": ("Valid until", "Gültig bis", "有效期至"),
    "never": ("unlimited", "unbegrenzt", "永久"),
    "starts_at_activation": (
        "{days} days from the first activation",
        "{days} Tage ab der ersten Aktivierung",
        "首次激活后 {days} 天",
    ),
    "devices": ("Devices", "Geräte", "设备"),
    "devices_used": ("{used} of {max} in use", "{used} von {max} belegt", "已用 {used} / {max}"),
    "no_devices": ("No device is activated yet.", "Noch kein Gerät aktiviert.", "尚未激活任何设备。"),
    "last_seen": ("last seen", "zuletzt gesehen", "最近使用"),
    "free_device": ("Free this device", "Gerät freigeben", "释放此设备"),
    "free_confirm": (
        "Free this device? The program on it stops and must be activated again there.",
        "Dieses Gerät freigeben? Das Programm darauf wird beendet und muss dort neu aktiviert werden.",
        "确定释放此设备？该设备上的程序将停止，需要重新激活。",
    ),
    "frees_left": (
        "You can free {n} more device(s) of this license in the next 30 days.",
        "Sie können in den nächsten 30 Tagen noch {n} Gerät(e) dieser Lizenz freigeben.",
        "未来 30 天内此许可证还可释放 {n} 台设备。",
    ),
    "device_freed": ("The device was freed.", "Das Gerät wurde freigegeben.", "设备已释放。"),
    "running": ("Running now", "Läuft gerade", "正在运行"),
    "started": ("started", "gestartet", "启动于"),
    "end_session": ("End", "Beenden", "结束"),
    "end_confirm": (
        "End the program on this device now?",
        "Das Programm auf diesem Gerät jetzt beenden?",
        "立即结束此设备上的程序？",
    ),
    "session_ended": ("The program was ended there.", "Das Programm wurde dort beendet.", "程序已结束。"),
    "unknown_device": ("unnamed device", "unbenanntes Gerät", "未命名设备"),
    "add_license": ("Add a license", "Lizenz hinzufügen", "添加许可证"),
    "add": ("Add", "Hinzufügen", "添加"),
    "license_added": ("The license was added.", "Die Lizenz wurde hinzugefügt.", "许可证已添加。"),
    "credential": ("Sign-in file for the program", "Anmeldedatei für das Programm", "程序登录文件"),
    "credential_intro": (
        "Download a file the program can import with your password instead of a license key. "
        "Changing your password makes earlier files useless.",
        "Laden Sie eine Datei, die das Programm mit Ihrem Passwort statt eines Lizenzschlüssels "
        "importiert. Ändern Sie Ihr Passwort, werden frühere Dateien ungültig.",
        "下载一个文件，程序可凭您的密码导入它来代替许可证密钥。修改密码后，旧文件将失效。",
    ),
    "download": ("Download", "Herunterladen", "下载"),
    "change_password": ("Change password", "Passwort ändern", "修改密码"),
    "password_changed": (
        "Your password was changed. You were signed out everywhere else.",
        "Ihr Passwort wurde geändert. Alle anderen Anmeldungen wurden beendet.",
        "密码已修改，其他地方的登录已退出。",
    ),
    "reset": ("Reset password", "Passwort zurücksetzen", "重置密码"),
    "reset_intro": (
        "Enter your email address. If an account exists, you will receive a link to choose a new password.",
        "Geben Sie Ihre E-Mail-Adresse ein. Gibt es ein Konto, erhalten Sie einen Link zum Festlegen eines "
        "neuen Passworts.",
        "请输入您的电子邮箱。如果账户存在，您将收到设置新密码的链接。",
    ),
    "reset_sent": (
        "If an account exists for this address, a message is on its way.",
        "Falls ein Konto zu dieser Adresse existiert, ist eine Nachricht unterwegs.",
        "如果该邮箱存在账户，邮件已发送。",
    ),
    "send": ("Send", "Senden", "发送"),
    "save": ("Save", "Speichern", "保存"),
    "reset_done": (
        "Your new password is set. Sign in with it.",
        "Ihr neues Passwort ist gesetzt. Melden Sie sich damit an.",
        "新密码已设置，请使用新密码登录。",
    ),
    "delete_account": ("Delete my account", "Mein Konto löschen", "删除我的账户"),
    "delete_intro": (
        "Your email address and data are erased. Your licenses keep working with their keys, "
        "but are no longer shown here. This cannot be undone.",
        "Ihre E-Mail-Adresse und Daten werden gelöscht. Ihre Lizenzen funktionieren mit ihren Schlüsseln "
        "weiter, werden hier aber nicht mehr angezeigt. Das lässt sich nicht rückgängig machen.",
        "您的电子邮箱和数据将被删除。许可证仍可凭密钥使用，但不再显示在此处。此操作无法撤销。",
    ),
    "delete": ("Delete for good", "Endgültig löschen", "永久删除"),
    "deleted": ("Your account was deleted.", "Ihr Konto wurde gelöscht.", "您的账户已删除。"),
    "account": ("Account", "Konto", "账户"),
    "back": ("Back to my licenses", "Zurück zu meinen Lizenzen", "返回我的许可证"),
    "signed_in_as": ("Signed in as {email}", "Angemeldet als {email}", "当前登录：{email}"),
    "form_expired": (
        "The form had expired. Please try again.",
        "Das Formular war abgelaufen. Bitte versuchen Sie es erneut.",
        "表单已过期，请重试。",
    ),
    "unknown_product": ("This portal does not exist.", "Dieses Portal gibt es nicht.", "此门户不存在。"),
    # error codes
    "TICKET_INVALID": (
        "This key is not an unused card key or an unclaimed license key.",
        "Dieser Schlüssel ist kein unbenutzter Karten- oder freier Lizenzschlüssel.",
        "该密钥不是未使用的卡密或未被认领的许可证密钥。",
    ),
    "EMAIL_TAKEN": (
        "An account with this email address exists already.",
        "Zu dieser E-Mail-Adresse gibt es bereits ein Konto.",
        "该电子邮箱已注册。",
    ),
    "LOGIN_FAILED": (
        "The email address or the password is wrong.",
        "E-Mail-Adresse oder Passwort ist falsch.",
        "电子邮箱或密码错误。",
    ),
    "RATE_LIMITED": (
        "Too many attempts. Please wait a few minutes.",
        "Zu viele Versuche. Bitte warten Sie einige Minuten.",
        "尝试次数过多，请稍候再试。",
    ),
    "ACCOUNT_DISABLED": ("This account is disabled.", "Dieses Konto ist gesperrt.", "此账户已被停用。"),
    "CODE_INVALID": (
        "The code is wrong or has expired.",
        "Der Code ist falsch oder abgelaufen.",
        "验证码错误或已过期。",
    ),
    "TOKEN_INVALID": (
        "This link was already used or has expired. Ask for a new one.",
        "Dieser Link wurde schon benutzt oder ist abgelaufen. Fordern Sie einen neuen an.",
        "此链接已使用或已过期，请重新申请。",
    ),
    "FREE_LIMIT_REACHED": (
        "This license cannot free another device in these 30 days.",
        "Diese Lizenz kann in diesen 30 Tagen kein weiteres Gerät freigeben.",
        "此许可证 30 天内无法再释放设备。",
    ),
    "LICENSE_NOT_FOUND": (
        "No free license with this key.",
        "Keine freie Lizenz mit diesem Schlüssel.",
        "没有可用的此密钥许可证。",
    ),
    "CARD_NOT_FOUND": (
        "No unused card with this key.",
        "Keine unbenutzte Karte mit diesem Schlüssel.",
        "没有未使用的此卡密。",
    ),
    "VALIDATION_ERROR": (
        "Please check what you entered.",
        "Bitte prüfen Sie Ihre Eingaben.",
        "请检查您的输入。",
    ),
    "ERROR": (
        "Something went wrong. Please try again.",
        "Etwas ist schiefgegangen. Bitte versuchen Sie es erneut.",
        "出现错误，请重试。",
    ),
}

INDEX = {"en": 0, "de": 1, "zh": 2}


class Words:
    """`t("key", n=2)` in the templates: the word in the page's language, with values filled in."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self._i = INDEX.get(lang, 0)

    def __call__(self, key: str, **values: object) -> str:
        word = WORDS.get(key, WORDS["ERROR"])[self._i]
        return word.format(**values) if values else word
