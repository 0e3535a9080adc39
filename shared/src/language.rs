//! The languages a call can be held in: the booking's `language` (BCP-47), the agent's
//! instructions and opening sentence, the farewells the worker speaks itself, and the
//! transcription hint. A language is offered only where every one of those exists.

use serde::{Deserialize, Serialize};

use crate::events::EndReason;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    #[default]
    En,
    Es,
    Fr,
    De,
    It,
}

/// Regional tags Twilio's `<Say>` speaks as given; any other region of a language we
/// have is spoken in that language's main locale.
const SAY_LOCALES: [&str; 11] =
    ["en-US", "en-GB", "en-AU", "en-IN", "es-ES", "es-MX", "es-US", "fr-FR", "fr-CA", "de-DE", "it-IT"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a language calls can be made in; use one of: {list}", list = Language::supported_list())]
pub struct UnsupportedLanguage(pub String);

impl Language {
    pub const ALL: [Language; 5] = [Language::En, Language::Es, Language::Fr, Language::De, Language::It];

    /// A BCP-47 tag (`es`, `es-MX`, `fr-CA`), by its primary language subtag.
    pub fn parse(tag: &str) -> Result<Language, UnsupportedLanguage> {
        let primary = tag.trim().split(['-', '_']).next().unwrap_or_default().to_ascii_lowercase();
        Language::ALL
            .into_iter()
            .find(|l| l.code() == primary)
            .ok_or_else(|| UnsupportedLanguage(tag.trim().to_owned()))
    }

    /// ISO 639-1: what the transcription model takes as its language hint.
    pub fn code(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Es => "es",
            Language::Fr => "fr",
            Language::De => "de",
            Language::It => "it",
        }
    }

    /// The language's name in English, as the instructions name it.
    pub fn name(self) -> &'static str {
        match self {
            Language::En => "English",
            Language::Es => "Spanish",
            Language::Fr => "French",
            Language::De => "German",
            Language::It => "Italian",
        }
    }

    pub fn supported_list() -> String {
        Language::ALL.iter().map(|l| format!("{} ({})", l.code(), l.name())).collect::<Vec<_>>().join(", ")
    }

    /// The locale Twilio's `<Say>` speaks the farewell in: the booking's own tag when
    /// Twilio has it, else the language's main one.
    pub fn say_locale(self, tag: Option<&str>) -> &'static str {
        if let Some(known) = tag.and_then(|t| SAY_LOCALES.iter().find(|l| l.eq_ignore_ascii_case(t.trim()))) {
            if Language::parse(known).ok() == Some(self) {
                return known;
            }
        }
        match self {
            Language::En => "en-US",
            Language::Es => "es-ES",
            Language::Fr => "fr-FR",
            Language::De => "de-DE",
            Language::It => "it-IT",
        }
    }

    /// The agent's opening sentence unless the deployment sets its own; `{guest}` is
    /// the guest's name.
    pub fn introduction(self) -> &'static str {
        match self {
            Language::En => "Hi, this is an AI assistant calling on behalf of {guest}.",
            Language::Es => "Hola, soy un asistente de inteligencia artificial que llama en nombre de {guest}.",
            Language::Fr => {
                "Bonjour, je suis un assistant d'intelligence artificielle qui appelle de la part de {guest}."
            }
            Language::De => "Guten Tag, hier spricht ein KI-Assistent, der im Auftrag von {guest} anruft.",
            Language::It => "Buongiorno, sono un assistente di intelligenza artificiale e chiamo per conto di {guest}.",
        }
    }

    /// Said after the introduction when the call is recorded.
    pub fn recording_notice(self) -> &'static str {
        match self {
            Language::En => "This call is recorded.",
            Language::Es => "Esta llamada se está grabando.",
            Language::Fr => "Cet appel est enregistré.",
            Language::De => "Dieses Gespräch wird aufgezeichnet.",
            Language::It => "Questa chiamata viene registrata.",
        }
    }

    /// What the worker's own voice says before a hang-up the conversation did not lead
    /// to; `None` for endings without one.
    pub fn farewell(self, reason: EndReason) -> Option<&'static str> {
        use EndReason::*;
        let text = match (self, reason) {
            (_, AgentHungUp | MaxDuration | Silence | CallerHungUp | Superseded) => return None,
            (Language::En, Shutdown) => "I'm sorry, I have to end the call now. Goodbye.",
            (Language::En, ModelUnavailable) => {
                "I'm sorry, I'm having technical trouble and have to end the call. We'll call back. Goodbye."
            }
            (Language::En, AtCapacity) => "Sorry, we can't take this call right now. Goodbye.",
            (Language::En, ContextUnavailable) => "Sorry, we're having technical trouble. Goodbye.",
            (Language::En, WorkerLost) => "I'm sorry, we lost the connection and have to end the call. Goodbye.",
            (Language::Es, Shutdown) => "Lo siento, tengo que terminar la llamada ahora. Adiós.",
            (Language::Es, ModelUnavailable) => {
                "Lo siento, tengo un problema técnico y debo terminar la llamada. Volveremos a llamar. Adiós."
            }
            (Language::Es, AtCapacity) => "Lo siento, ahora no podemos atender esta llamada. Adiós.",
            (Language::Es, ContextUnavailable) => "Lo siento, tenemos un problema técnico. Adiós.",
            (Language::Es, WorkerLost) => "Lo siento, se perdió la conexión y debo terminar la llamada. Adiós.",
            (Language::Fr, Shutdown) => "Je suis désolé, je dois mettre fin à l'appel maintenant. Au revoir.",
            (Language::Fr, ModelUnavailable) => {
                "Je suis désolé, j'ai un problème technique et je dois mettre fin à l'appel. Nous vous rappellerons. Au revoir."
            }
            (Language::Fr, AtCapacity) => "Désolé, nous ne pouvons pas prendre cet appel pour le moment. Au revoir.",
            (Language::Fr, ContextUnavailable) => "Désolé, nous avons un problème technique. Au revoir.",
            (Language::Fr, WorkerLost) => {
                "Je suis désolé, nous avons perdu la connexion et je dois mettre fin à l'appel. Au revoir."
            }
            (Language::De, Shutdown) => "Es tut mir leid, ich muss das Gespräch jetzt beenden. Auf Wiederhören.",
            (Language::De, ModelUnavailable) => {
                "Es tut mir leid, ich habe ein technisches Problem und muss das Gespräch beenden. Wir rufen wieder an. Auf Wiederhören."
            }
            (Language::De, AtCapacity) => "Entschuldigung, wir können diesen Anruf gerade nicht annehmen. Auf Wiederhören.",
            (Language::De, ContextUnavailable) => "Entschuldigung, wir haben ein technisches Problem. Auf Wiederhören.",
            (Language::De, WorkerLost) => {
                "Es tut mir leid, die Verbindung ist abgebrochen und ich muss das Gespräch beenden. Auf Wiederhören."
            }
            (Language::It, Shutdown) => "Mi dispiace, devo chiudere la chiamata adesso. Arrivederci.",
            (Language::It, ModelUnavailable) => {
                "Mi dispiace, ho un problema tecnico e devo chiudere la chiamata. Vi richiameremo. Arrivederci."
            }
            (Language::It, AtCapacity) => "Mi dispiace, al momento non possiamo gestire questa chiamata. Arrivederci.",
            (Language::It, ContextUnavailable) => "Mi dispiace, abbiamo un problema tecnico. Arrivederci.",
            (Language::It, WorkerLost) => {
                "Mi dispiace, la connessione si è interrotta e devo chiudere la chiamata. Arrivederci."
            }
        };
        Some(text)
    }
}

/// A farewell to speak: its words and the `<Say>` locale to speak them in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Farewell {
    pub text: String,
    pub locale: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_read_by_their_language_and_others_are_refused_with_the_list() {
        assert_eq!(Language::parse("es-MX"), Ok(Language::Es));
        assert_eq!(Language::parse(" FR "), Ok(Language::Fr));
        assert_eq!(Language::parse("de_AT"), Ok(Language::De));
        let refused = Language::parse("pt-BR").unwrap_err().to_string();
        assert!(refused.contains("'pt-BR'") && refused.contains("it (Italian)"), "{refused}");
        assert!(Language::parse("").is_err() && Language::parse("english").is_err());
    }

    #[test]
    fn every_language_has_every_farewell_and_says_it_in_its_own_locale() {
        for language in Language::ALL {
            for reason in [
                EndReason::Shutdown,
                EndReason::ModelUnavailable,
                EndReason::AtCapacity,
                EndReason::ContextUnavailable,
                EndReason::WorkerLost,
            ] {
                assert!(language.farewell(reason).is_some_and(|t| !t.is_empty()), "{language:?} {reason:?}");
            }
            assert_eq!(language.farewell(EndReason::AgentHungUp), None);
            assert!(language.introduction().contains("{guest}"));
            assert!(language.say_locale(None).starts_with(language.code()));
        }
        assert_eq!(Language::Es.say_locale(Some("es-mx")), "es-MX");
        assert_eq!(Language::Es.say_locale(Some("es-AR")), "es-ES", "a region Twilio does not speak");
        assert_eq!(Language::Es.say_locale(Some("fr-FR")), "es-ES", "a tag of another language is not taken");
    }
}
