//! `GET /verify`: the SPEC §4.4 vectors over HTTP, and every bad input as a 422.

use serde_json::Value;

use crate::helpers::spawn_app;

const SERVER: &str = "564e967b90f03d0153fdcb2d2d1cc5a5057e0df78163611fe3801d6498e681ca";

#[tokio::test]
async fn verify_returns_the_vector_results_and_the_permutation() {
    let app = spawn_app(&[]).await;
    let cases =
        [("expert", 13, 12, 11200.65), ("easy", 16, 15, 2.45), ("medium", 16, 15, 18.78), ("hard", 13, 12, 40.46)];
    for (difficulty, pop_point, max_pumps, multiplier) in cases {
        let url =
            app.url(&format!("/verify?server_seed={SERVER}&client_seed=zXv1upuFns&nonce=5663&difficulty={difficulty}"));
        let response = app.client.get(url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["pop_point"], pop_point, "{difficulty}");
        assert_eq!(body["max_pumps"], max_pumps, "{difficulty}");
        assert_eq!(body["max_multiplier"], multiplier, "{difficulty}");
        let permutation: Vec<u64> =
            body["permutation"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
        assert_eq!(
            permutation,
            vec![16, 25, 20, 13, 15, 14, 23, 18, 19, 17, 9, 21, 5, 12, 10, 24, 6, 7, 2, 8, 4, 1, 11, 3, 22]
        );
    }
    let url = app.url("/verify?server_seed=verify_server&client_seed=verify_client&nonce=1&difficulty=hard");
    let body: Value = app.client.get(url).send().await.unwrap().json().await.unwrap();
    assert_eq!((body["pop_point"].as_u64(), body["max_multiplier"].as_f64()), (Some(1), Some(1.0)));
}

#[tokio::test]
async fn bad_verify_input_gets_422_naming_the_parameter() {
    let app = spawn_app(&[]).await;
    let cases = [
        ("server_seed=s&client_seed=c&nonce=1&difficulty=insane", "difficulty"),
        ("server_seed=s&client_seed=c&nonce=0&difficulty=easy", "nonce"),
        ("server_seed=s&client_seed=c&nonce=-4&difficulty=easy", "nonce"),
        ("server_seed=s&client_seed=c&nonce=abc&difficulty=easy", "nonce"),
        ("server_seed=s&client_seed=c&nonce=99999999999999999999&difficulty=easy", "nonce"),
        ("server_seed=%20%20&client_seed=c&nonce=1&difficulty=easy", "server_seed"),
        ("client_seed=c&nonce=1&difficulty=easy", "server_seed"),
        ("server_seed=s&nonce=1&difficulty=easy", "client_seed"),
        ("server_seed=s&client_seed=c&difficulty=easy", "nonce"),
        ("server_seed=s&client_seed=c&nonce=1", "difficulty"),
        ("", "server_seed"),
    ];
    for (query, field) in cases {
        let response = app.client.get(app.url(&format!("/verify?{query}"))).send().await.unwrap();
        assert_eq!(response.status(), 422, "{query}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "VALIDATION_ERROR");
        assert!(body["detail"].as_str().unwrap().contains(field), "{query}: {body}");
    }
    let long = "x".repeat(300);
    let response = app
        .client
        .get(app.url(&format!("/verify?server_seed={long}&client_seed=c&nonce=1&difficulty=easy")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
}
