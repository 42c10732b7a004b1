"""Slash-command descriptions in the languages whose users can already type colours in them."""

from __future__ import annotations

import discord
from discord import app_commands

# command name -> locale -> description (Discord allows at most 100 characters)
_DESCRIPTIONS: dict[str, dict[discord.Locale, str]] = {
    "waifu": {discord.Locale.korean: "얼굴을 그립니다. 예: /waifu 분홍 파랑",
              discord.Locale.japanese: "顔を描きます。例: /waifu ピンク 青",
              discord.Locale.chinese: "画一张脸，例如 /waifu 粉色 蓝色",
              discord.Locale.french: "dessine des visages, ex. /waifu rose bleu"},
    "grid": {discord.Locale.korean: "한 얼굴을 모든 머리색, 눈색 또는 조합으로",
             discord.Locale.japanese: "同じ顔を全ての髪色・目の色・組み合わせで",
             discord.Locale.chinese: "同一张脸的所有发色、瞳色或组合",
             discord.Locale.french: "un visage dans chaque couleur de cheveux, d'yeux ou paire"},
    "morph": {discord.Locale.korean: "두 얼굴 사이를 변하는 움직이는 GIF",
              discord.Locale.japanese: "二つの顔の間を変化するアニメGIF",
              discord.Locale.chinese: "在两张脸之间变换的动图",
              discord.Locale.french: "un GIF animé qui passe d'un visage à l'autre"},
    "sketch": {discord.Locale.korean: "내 그림을 얼굴로 칠합니다 (그림을 함께 보내세요)",
               discord.Locale.japanese: "あなたの絵を顔に塗ります（画像を添えて）",
               discord.Locale.chinese: "把你的画涂成一张脸（附上图片）",
               discord.Locale.french: "peint votre dessin en visage (joignez une image)"},
    "top": {discord.Locale.korean: "가장 많은 추천을 받은 그림",
            discord.Locale.japanese: "いちばん票を集めた絵",
            discord.Locale.chinese: "得票最多的图片",
            discord.Locale.french: "les images les mieux notées"},
    "stats": {discord.Locale.korean: "그린 그림, 투표, 데이터셋 크기, 모델 버전",
              discord.Locale.japanese: "描いた枚数・投票・データセット・モデルの版",
              discord.Locale.chinese: "已画图片、投票、数据集大小、模型版本",
              discord.Locale.french: "images dessinées, votes, taille du jeu de données, version du modèle"},
    "colors": {discord.Locale.korean: "알아듣는 모든 색 이름",
               discord.Locale.japanese: "使える色の名前の一覧",
               discord.Locale.chinese: "我能理解的所有颜色词",
               discord.Locale.french: "tous les noms de couleurs que je comprends"},
    "help": {discord.Locale.korean: "명령어 목록", discord.Locale.japanese: "コマンド一覧",
             discord.Locale.chinese: "命令列表", discord.Locale.french: "la liste des commandes"},
}


class Descriptions(app_commands.Translator):
    """Translates command descriptions; everything else stays as written."""

    async def translate(self, string: app_commands.locale_str, locale: discord.Locale,
                        context: app_commands.TranslationContextTypes) -> str | None:
        if context.location is not app_commands.TranslationContextLocation.command_description:
            return None
        return _DESCRIPTIONS.get(getattr(context.data, "name", ""), {}).get(locale)
