"""Reading what chat made: /top, the dashboard's gallery, /stats totals, and picture files by id."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from bot.store.database import Database
from bot.store.records import GalleryFilter, GalleryItem, Picture, Totals

VOTE_FILTERS = {"up": "EXISTS (SELECT 1 FROM votes WHERE picture_id = p.id AND value = 1)",
                "down": "EXISTS (SELECT 1 FROM votes WHERE picture_id = p.id AND value = -1)",
                "none": "NOT EXISTS (SELECT 1 FROM votes WHERE picture_id = p.id)"}
UP, DOWN = "COUNT(*) FILTER (WHERE v.value = 1)", "COUNT(*) FILTER (WHERE v.value = -1)"


class Reports:
    db: Database
    data_dir: Path

    async def top(self, since: datetime | None, limit: int) -> list[Picture]:
        """Pictures made since ``since`` (all when None) with at least one 👍, best score first."""
        stamp = since.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") if since else ""
        rows = await self.db.fetchall(
            f"SELECT p.id, p.path, p.kind, p.tags, p.seed, p.count, {UP} AS up, {DOWN} AS down FROM pictures p "
            f"JOIN votes v ON v.picture_id = p.id WHERE p.created_at >= ? GROUP BY p.id HAVING {UP} > 0 "
            "ORDER BY SUM(v.value) DESC, up DESC, p.id LIMIT ?", (stamp, limit))
        return [Picture(r["id"], self.data_dir / r["path"], r["kind"], r["tags"], r["seed"], r["count"],
                        r["up"], r["down"]) for r in rows]

    async def gallery(self, where: GalleryFilter, page: int, per_page: int) -> tuple[list[GalleryItem], int]:
        """One page of pictures, newest first, with their vote counts; and how many match in all.

        Counts are looked up per shown row (votes' primary key starts with picture_id), so a page
        costs the same at the start and the end of a large table.
        """
        clauses, params = [], []
        for word in where.tags.lower().split()[:8]:
            clauses.append("lower(p.tags) LIKE ? ESCAPE '\\'")
            params.append("%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
        for column in ("platform", "kind"):
            if getattr(where, column):
                clauses.append(f"p.{column} = ?")
                params.append(getattr(where, column))
        if where.votes:
            clauses.append(VOTE_FILTERS[where.votes])
        if where.state == "none":
            clauses.append("NOT EXISTS (SELECT 1 FROM images WHERE picture_id = p.id)")
        elif where.state:
            clauses.append("EXISTS (SELECT 1 FROM images WHERE picture_id = p.id AND status = ?)")
            params.append(where.state)
        sql_where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        total = await self.db.fetchval(f"SELECT COUNT(*) FROM pictures p {sql_where}", params)
        rows = await self.db.fetchall(
            "SELECT p.id, p.kind, p.tags, p.platform, p.model_version, p.created_at, "
            "(SELECT COUNT(*) FROM votes WHERE picture_id = p.id AND value = 1), "
            "(SELECT COUNT(*) FROM votes WHERE picture_id = p.id AND value = -1), "
            "(SELECT status FROM images WHERE picture_id = p.id LIMIT 1) "
            f"FROM pictures p {sql_where} ORDER BY p.id DESC LIMIT ? OFFSET ?",
            (*params, per_page, (page - 1) * per_page))
        return [GalleryItem(*r) for r in rows], total

    async def platforms_and_kinds(self) -> tuple[list[str], list[str]]:
        """The values the gallery's platform and kind filters can take."""
        platforms = [r[0] for r in await self.db.fetchall("SELECT DISTINCT platform FROM pictures ORDER BY 1")]
        kinds = [r[0] for r in await self.db.fetchall("SELECT DISTINCT kind FROM pictures ORDER BY 1")]
        return platforms, kinds

    async def picture_file(self, picture_id: int) -> Path | None:
        """The stored file of a picture, looked up by id (callers never pass paths)."""
        path = await self.db.fetchval("SELECT path FROM pictures WHERE id = ?", (picture_id,))
        return self.data_dir / path if path else None

    async def totals(self) -> Totals:
        row = await self.db.fetchone(
            "SELECT (SELECT COUNT(*) FROM pictures), (SELECT COUNT(*) FROM votes), "
            "(SELECT COUNT(DISTINCT user_id) FROM votes), (SELECT COUNT(*) FROM users), "
            "(SELECT COUNT(*) FROM images WHERE status != 'rejected')")
        return Totals(*row)
