"""The bot's store: one data-access interface (``database``) on SQLite or PostgreSQL, and what the bot keeps
in it (``store.Store``). Importers name what they use from here."""

from bot.store.database import storage_full
from bot.store.files import FILE_FOLDERS
from bot.store.records import (Counts, Forgotten, GalleryFilter, GalleryItem, Item, NewPicture, NewUpload, Picture,
                               Totals)
from bot.store.reports import VOTE_FILTERS
from bot.store.store import Store

__all__ = ["Counts", "FILE_FOLDERS", "Forgotten", "GalleryFilter", "GalleryItem", "Item", "NewPicture",
           "NewUpload", "Picture", "Store", "Totals", "VOTE_FILTERS", "storage_full"]
