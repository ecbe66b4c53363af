"""The texts of the status page in French (first), English and Russian, and choosing a language.

A text is looked up by key; every key has all three languages (a test checks it). The language
is ``?lang=`` when it names one we have, else the best match of ``Accept-Language``, else French.
"""

from __future__ import annotations

from collections.abc import Callable

LANGUAGES: tuple[str, ...] = ("fr", "en", "ru")
DEFAULT_LANGUAGE = "fr"

Translate = Callable[..., str]

TEXTS: dict[str, tuple[str, str, str]] = {
    "page_title": ("État de la caisse", "Box status", "Состояние кассы"),
    "status_ok": ("En service", "Running", "Работает"),
    "status_alarm": ("Alarme", "Alarm", "Тревога"),
    "status_starting": ("Démarrage", "Starting", "Запуск"),
    "refresh_note": ("Page actualisée toutes les 10 s", "This page refreshes every 10 s",
                     "Страница обновляется каждые 10 с"),
    "language": ("Langue", "Language", "Язык"),
    # identity
    "section_identity": ("Identité", "Identity", "Идентификация"),
    "store_name": ("Magasin", "Store", "Магазин"),
    "address": ("Adresse", "Address", "Адрес"),
    "siret": ("SIRET", "SIRET", "SIRET"),
    "naf": ("Code NAF", "NAF code", "Код NAF"),
    "vat_number": ("N° de TVA", "VAT number", "Номер НДС"),
    "store_id": ("Identifiant du magasin", "Store id", "Идентификатор магазина"),
    "register": ("Caisse", "Register", "Касса"),
    "box_key": ("Clé de la caisse", "Box key", "Ключ кассы"),
    "version": ("Version du logiciel", "Software version", "Версия ПО"),
    "started_at": ("Démarrée le", "Started at", "Запущена"),
    # devices
    "section_devices": ("Périphériques", "Devices", "Устройства"),
    "device_printer": ("Imprimante", "Printer", "Принтер"),
    "device_drawer": ("Tiroir-caisse", "Cash drawer", "Денежный ящик"),
    "device_display": ("Afficheur client", "Customer display", "Дисплей покупателя"),
    "device_scale": ("Balance", "Scale", "Весы"),
    "device_scanner": ("Lecteur de codes-barres", "Barcode scanner", "Сканер штрихкодов"),
    "driver_simulated": ("simulé", "simulated", "симулятор"),
    "driver_none": ("aucun", "none", "нет"),
    "driver_usb": ("USB", "USB", "USB"),
    "state_connecting": ("connexion…", "connecting", "подключение"),
    "state_ready": ("prêt", "ready", "готов"),
    "state_busy": ("occupé", "busy", "занят"),
    "state_error": ("erreur", "error", "ошибка"),
    "state_unavailable": ("indisponible", "unavailable", "недоступен"),
    "reason_not_connected": ("pas encore connecté", "not yet connected", "ещё не подключён"),
    "reason_not_configured": ("non configuré", "not configured", "не настроен"),
    "reason_start_failed": ("démarrage impossible", "could not start", "не удалось запустить"),
    "reason_no_printer": ("pas d'imprimante", "no printer", "нет принтера"),
    "reason_unreachable": ("injoignable", "unreachable", "недоступен по сети"),
    "reason_offline": ("hors ligne", "offline", "не в сети"),
    "reason_bad_status": ("état illisible", "unreadable status", "нечитаемый статус"),
    "reason_paper_out": ("plus de papier", "paper out", "нет бумаги"),
    "reason_cover_open": ("capot ouvert", "cover open", "крышка открыта"),
    "reason_cutter_error": ("erreur du massicot", "cutter error", "ошибка резака"),
    "reason_unplugged": ("débranché", "unplugged", "отключён"),
    "reason_timeout": ("ne répond pas", "not answering", "не отвечает"),
    "reason_write_timeout": ("ne répond pas", "not answering", "не отвечает"),
    "reason_no_answer": ("ne répond pas", "not answering", "не отвечает"),
    "reason_not_found": ("introuvable", "not found", "не найден"),
    "reason_open_failed": ("ouverture impossible", "cannot open", "не удаётся открыть"),
    "reason_io_error": ("erreur de liaison", "link error", "ошибка связи"),
    "reason_not_open": ("non ouvert", "not open", "не открыт"),
    "reason_garbage": ("données illisibles", "garbled data", "искажённые данные"),
    "reason_permission_denied": ("accès refusé (règle udev ?)", "permission denied (udev rule?)",
                                 "доступ запрещён (правило udev?)"),
    "reason_busy": ("occupé par un autre programme", "held by another program",
                    "занят другой программой"),
    "reason_no_libusb": ("libusb absente", "libusb missing", "нет libusb"),
    # journal
    "section_journal": ("Journal fiscal", "Fiscal journal", "Фискальный журнал"),
    "global_seq": ("Dernier numéro global", "Last global sequence", "Последний общий номер"),
    "chain": ("Chaîne", "Chain", "Цепочка"),
    "chain_seq": ("Dernier n° de la chaîne", "Last number in chain", "Последний номер в цепочке"),
    "seq_column": ("N° global", "Global no.", "Общий номер"),
    "chain_ticket": ("Tickets", "Tickets", "Чеки"),
    "chain_invoice": ("Factures", "Invoices", "Счета"),
    "chain_copy": ("Duplicatas", "Copies", "Копии"),
    "chain_closure": ("Clôtures journalières", "Day closures", "Закрытия дня"),
    "chain_period": ("Clôtures de période", "Period closures", "Закрытия периодов"),
    "chain_archive": ("Archives", "Archives", "Архивы"),
    "chain_event": ("Événements techniques (JET)", "Technical events (JET)",
                    "Технические события (JET)"),
    "chain_training": ("Mode formation", "Training mode", "Учебный режим"),
    "chain_cash": ("Mouvements d'espèces", "Cash movements", "Движения наличных"),
    "no_entries": ("aucune entrée", "no entries", "записей нет"),
    "last_day_closure": ("Dernière clôture journalière", "Last day closure",
                         "Последнее закрытие дня"),
    "never": ("jamais", "never", "никогда"),
    "heads_checked": ("Têtes de chaîne contrôlées", "Chain heads checked",
                      "Головы цепочек проверены"),
    "last_verification": ("Dernière vérification complète", "Last full verification",
                          "Последняя полная проверка"),
    "verification_clean": ("aucune anomalie", "clean", "без замечаний"),
    "verification_findings": ("{count} anomalie(s)", "{count} finding(s)",
                              "замечаний: {count}"),
    "alarms": ("Alarmes", "Alarms", "Тревоги"),
    "no_alarms": ("Aucune alarme", "No alarms", "Тревог нет"),
    # replication
    "section_replication": ("Réplication", "Replication", "Репликация"),
    "replication_off": ("Réplication vers le cloud désactivée", "Cloud replication off",
                        "Репликация в облако отключена"),
    "replication_link": ("Liaison", "Link", "Связь"),
    "link_connected": ("connectée", "connected", "подключена"),
    "link_connecting": ("connexion…", "connecting…", "подключение…"),
    "link_offline": ("hors ligne, nouvel essai bientôt", "offline, retrying soon",
                     "нет связи, скоро новая попытка"),
    "link_refused": ("refusée par le serveur", "refused by the broker", "отклонена брокером"),
    "replication_broker": ("Serveur MQTT", "Broker", "Брокер MQTT"),
    "replication_box_id": ("Identifiant de la caisse", "Box id", "Идентификатор кассы"),
    "replication_backlog": ("Entrées en attente", "Entries waiting", "Записей в очереди"),
    "replication_lag": ("Retard", "Lag", "Задержка"),
    "replication_acked": ("Acquittées jusqu'au n°", "Acknowledged through",
                          "Подтверждены до №"),
    "replication_last_ack": ("Dernier acquittement", "Last acknowledgement",
                             "Последнее подтверждение"),
    "replication_last_error": ("Dernière erreur", "Last error", "Последняя ошибка"),
    "seconds": ("{value} s", "{value} s", "{value} с"),
    # network
    "section_network": ("Réseau", "Network", "Сеть"),
    "hostname": ("Nom d'hôte", "Host name", "Имя хоста"),
    "listening": ("API et page d'état", "API and status page", "API и страница состояния"),
    "addresses": ("Adresses", "Addresses", "Адреса"),
    "no_addresses": ("aucune adresse réseau", "no network address", "нет сетевых адресов"),
    # pairing
    "section_pairing": ("Appairage", "Pairing", "Сопряжение"),
    "pairing_code": ("Code d'appairage", "Pairing code", "Код сопряжения"),
    "pairing_note": (
        "Code à saisir sur le terminal de vente à appairer ; il change après chaque appairage.",
        "Enter this code on the point-of-sale terminal to pair; it changes after each pairing.",
        "Введите этот код на кассовом терминале; после каждого сопряжения он меняется."),
    "paired_frontends": ("Terminaux appairés", "Paired terminals", "Сопряжённые терминалы"),
    "initial_pin": ("PIN administrateur initial", "Initial admin PIN",
                    "Начальный PIN администратора"),
    "initial_pin_note": (
        "Connectez-vous comme « admin » avec ce PIN puis changez-le : il ne sera plus affiché.",
        "Sign in as “admin” with this PIN, then change it: it will no longer be shown.",
        "Войдите как «admin» с этим PIN и смените его: он больше не будет показан."),
}


def pick_language(accept_language: str | None, override: str | None = None) -> str:
    """Return ``override`` if supported, else the best ``Accept-Language`` match, else French."""
    if override and override.lower() in LANGUAGES:
        return override.lower()
    ranked = sorted(_ranges(accept_language or ""), key=lambda item: -item[1])
    for tag, quality in ranked:  # a stable sort: equal weights keep the header's order
        primary = tag.split("-")[0]
        if quality > 0 and primary in LANGUAGES:
            return primary
    return DEFAULT_LANGUAGE


def _ranges(header: str) -> list[tuple[str, float]]:
    ranges = []
    for part in header.split(","):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                quality = _quality(value)
        if tag:
            ranges.append((tag.lower(), quality))
    return ranges


def _quality(value: str) -> float:
    try:
        return min(max(float(value), 0.0), 1.0)
    except ValueError:
        return 0.0


def translator(language: str) -> Translate:
    """Return ``t(key, **values)`` for ``language`` (unknown keys show as themselves)."""
    index = LANGUAGES.index(language) if language in LANGUAGES else 0

    def translate(key: str, **values: object) -> str:
        texts = TEXTS.get(key)
        text = texts[index] if texts else key
        return text.format(**values) if values else text

    return translate
